// Index helpers for the pretraining datasets (pybind11 module `data_tools._index_helpers`).
//
// Four functions with the semantics of the original's `helpers` module (Megatron-LM lineage), so that an index map
// cached by the original is reproduced bit for bit: `build_mapping` (ERNIE/BERT sample map), `build_blocks_mapping`
// (REALM/ICT blocks), `build_blending_indices` (dataset blending) and `build_sample_idx` (GPT samples).
// Differences that never change the output for valid input: one pass instead of count-then-fill, the document
// filter computed once instead of once per epoch, the GIL released during the loops, bounds checked, and a clear
// exception instead of an endless epoch loop when no document is usable (REFERENCE §18.15).
// The typed Python wrapper is `data_tools/index_helpers.py`; call that, not this module.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace py = pybind11;

namespace {

#if defined(__GNUC__) || defined(__clang__)
#define INDEX_HELPERS_PREFETCH(address) __builtin_prefetch(address)
#else
#define INDEX_HELPERS_PREFETCH(address) ((void)0)
#endif

// A document with more than one sentence is skipped when any sentence is longer than this (original constant).
constexpr int32_t kLongSentenceLen = 512;

template <typename T>
using InArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <typename T, std::size_t Width>
using Rows = std::vector<std::array<T, Width>>;

// Moves the rows into a numpy array of shape [rows, Width] without copying; numpy frees them.
template <typename T, std::size_t Width>
py::array rows_to_numpy(Rows<T, Width>&& rows) {
    static_assert(sizeof(std::array<T, Width>) == Width * sizeof(T), "rows must be packed");
    const std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(rows.size()), static_cast<py::ssize_t>(Width)};
    if (rows.empty()) {
        return py::array_t<T>(shape);
    }
    auto* owned = new Rows<T, Width>(std::move(rows));
    py::capsule free_when_done(owned, [](void* pointer) { delete static_cast<Rows<T, Width>*>(pointer); });
    return py::array_t<T>(shape, owned->front().data(), free_when_done);
}

// std::mersenne_twister_engine, bit for bit, but producing a whole state's worth of outputs per refill so the
// twist and the tempering vectorise (libstdc++ tempers one output per call, several times slower here).
template <typename UInt, int N, int M, int R, UInt A, int U, UInt D, int S, UInt B, int T, UInt C, int L, UInt F>
class BlockMersenneTwister {
   public:
    explicit BlockMersenneTwister(UInt seed) {
        state_[0] = seed;
        for (int i = 1; i < N; ++i) {
            const UInt previous = state_[i - 1];
            state_[i] = F * (previous ^ (previous >> (kWordBits - 2))) + static_cast<UInt>(i);
        }
        index_ = N;
    }

    UInt operator()() {
        if (index_ == N) refill();
        return output_[index_++];
    }

   private:
    static constexpr int kWordBits = static_cast<int>(sizeof(UInt) * 8);
    static constexpr UInt kUpper = static_cast<UInt>(~UInt{0} << R);
    static constexpr UInt kLower = static_cast<UInt>(~kUpper);

    static UInt twist(UInt upper_word, UInt lower_word, UInt far_word) {
        const UInt y = (upper_word & kUpper) | (lower_word & kLower);
        return far_word ^ (y >> 1) ^ ((static_cast<UInt>(0) - (y & 1)) & A);
    }

    void refill() {
        for (int i = 0; i < N - M; ++i) state_[i] = twist(state_[i], state_[i + 1], state_[i + M]);
        for (int i = N - M; i < N - 1; ++i) state_[i] = twist(state_[i], state_[i + 1], state_[i + M - N]);
        state_[N - 1] = twist(state_[N - 1], state_[0], state_[M - 1]);
        for (int i = 0; i < N; ++i) {
            UInt y = state_[i];
            y ^= (y >> U) & D;
            y ^= (y << S) & B;
            y ^= (y << T) & C;
            y ^= y >> L;
            output_[i] = y;
        }
        index_ = 0;
    }

    UInt state_[N];
    UInt output_[N];
    int index_;
};

using Mt19937 = BlockMersenneTwister<uint32_t, 624, 397, 31, 0x9908b0dfu, 11, 0xffffffffu, 7, 0x9d2c5680u, 15,
                                     0xefc60000u, 18, 1812433253u>;
using Mt19937_64 = BlockMersenneTwister<uint64_t, 312, 156, 31, 0xb5026f5aa96619e9ull, 29, 0x5555555555555555ull, 17,
                                        0x71d67fffeda60000ull, 37, 0xfff7eee000000000ull, 43,
                                        6364136223846793005ull>;

// Fisher-Yates from the end with mt19937_64(seed + 1), as the original shuffles its maps. The swap partners are
// drawn a few rows ahead (same draws, same order) so their cache lines can be fetched before they are needed.
template <typename T, std::size_t Width>
void shuffle_rows(Rows<T, Width>& rows, int32_t seed) {
    constexpr int64_t kAhead = 16;
    const auto num_rows = static_cast<int64_t>(rows.size());
    if (num_rows < 2) {
        return;
    }
    Mt19937_64 rand64(static_cast<uint64_t>(static_cast<int64_t>(seed) + 1));
    int64_t partner[kAhead];
    int64_t next_draw = num_rows - 1;  // the i whose partner is drawn next
    auto draw = [&]() {
        const int64_t j = static_cast<int64_t>(rand64() % static_cast<uint64_t>(next_draw + 1));
        partner[next_draw % kAhead] = j;
        INDEX_HELPERS_PREFETCH(&rows[j]);
        --next_draw;
    };
    for (int64_t k = 0; k < kAhead && next_draw > 0; ++k) draw();
    for (int64_t i = num_rows - 1; i > 0; --i) {
        const int64_t j = partner[i % kAhead];
        if (next_draw > 0) draw();
        std::swap(rows[i], rows[j]);
    }
}

// Target length of the next sample: usually max_length, with probability ~1/ratio uniform in [2, max_length].
inline int32_t draw_target_len(int32_t short_seq_ratio, int32_t max_length, Mt19937& rand32) {
    if (short_seq_ratio == 0) {
        return max_length;
    }
    const uint32_t random_number = rand32();
    if (random_number % static_cast<uint32_t>(short_seq_ratio) == 0) {
        return static_cast<int32_t>(2 + random_number % static_cast<uint32_t>(max_length - 1));
    }
    return max_length;
}

struct DocumentSpan {
    int64_t doc;
    int64_t first_sentence;
    int64_t last_sentence;  // exclusive
};

struct DocumentCounts {
    int64_t empty = 0;
    int64_t one_sentence = 0;
    int64_t long_sentence = 0;
    int64_t usable_tokens = 0;
};

void check_documents(const int64_t* docs, int64_t num_docs, int64_t num_sentences) {
    for (int64_t doc = 0; doc <= num_docs; ++doc) {
        if (docs[doc] < 0 || docs[doc] > num_sentences) {
            throw std::out_of_range("doc_idx[" + std::to_string(doc) + "] = " + std::to_string(docs[doc]) +
                                    " lies outside the " + std::to_string(num_sentences) + " sentences of sizes");
        }
        if (doc > 0 && docs[doc] < docs[doc - 1]) {
            throw std::invalid_argument("doc_idx must be non-decreasing (doc_idx[" + std::to_string(doc) +
                                        "] < doc_idx[" + std::to_string(doc - 1) + "])");
        }
    }
}

// Documents the original would visit, in order. `long_check_min` is the sentence count from which a document is
// scanned for long sentences: 2 for build_mapping, min_num_sent for build_blocks_mapping (as in the original).
std::vector<DocumentSpan> usable_documents(const int64_t* docs, int64_t num_docs, const int32_t* sizes,
                                           int64_t min_num_sent, int64_t long_check_min, DocumentCounts& counts) {
    std::vector<DocumentSpan> usable;
    usable.reserve(static_cast<std::size_t>(num_docs));
    for (int64_t doc = 0; doc < num_docs; ++doc) {
        const int64_t first = docs[doc];
        const int64_t last = docs[doc + 1];
        const int64_t num_sent = last - first;
        counts.empty += num_sent == 0;
        counts.one_sentence += num_sent == 1;
        // Branch-free max and sum over the document: this loop touches every sentence once and vectorises.
        int32_t longest = 0;
        int64_t tokens = 0;
        for (int64_t sentence = first; sentence < last; ++sentence) {
            longest = std::max(longest, sizes[sentence]);
            tokens += sizes[sentence];
        }
        const bool flagged = num_sent >= long_check_min && longest > kLongSentenceLen;
        counts.long_sentence += flagged;
        if (num_sent >= min_num_sent && !flagged) {
            usable.push_back({doc, first, last});
            counts.usable_tokens += tokens;
        }
    }
    return usable;
}

[[noreturn]] void throw_no_usable_document(int64_t min_num_sent, int64_t num_docs, const DocumentCounts& counts) {
    throw std::invalid_argument(
        "no usable document: every one of the " + std::to_string(num_docs) + " documents has fewer than " +
        std::to_string(min_num_sent) + " sentences or a sentence longer than " + std::to_string(kLongSentenceLen) +
        " tokens (" + std::to_string(counts.empty) + " empty, " + std::to_string(counts.one_sentence) +
        " with one sentence, " + std::to_string(counts.long_sentence) + " with a long sentence)");
}

// Room for `rows_per_epoch` rows in each epoch that will run; regrowth copies are what this avoids.
template <typename Row>
void reserve_epochs(std::vector<Row>& rows, uint64_t rows_per_epoch, int32_t num_epochs, uint64_t max_num_samples) {
    if (rows_per_epoch == 0) {
        return;
    }
    const uint64_t epochs = std::min<uint64_t>(static_cast<uint64_t>(num_epochs), max_num_samples / rows_per_epoch + 2);
    // Epochs differ slightly in size (random targets): 2 % slack. Absurd requests grow as they go instead.
    const long double wanted = static_cast<long double>(rows_per_epoch) * epochs * 1.02L + 64.0L;
    if (wanted * sizeof(Row) < static_cast<long double>(uint64_t{1} << 40)) {
        rows.reserve(static_cast<std::size_t>(wanted));
    }
}

// Whole epochs of `one_epoch()` (which appends one epoch's rows) until `max_num_samples` rows exist or
// `num_epochs` ran. The original loops over epochs forever when the first one yields nothing (PaddleNLP #2555,
// #3214): fail fast instead, and once the first epoch's size is known, reserve room for the rest.
template <typename Row, typename OneEpoch>
void run_epochs(std::vector<Row>& rows, int32_t num_epochs, uint64_t max_num_samples, int64_t min_num_sent,
                int64_t num_docs, const DocumentCounts& counts, int32_t& epochs_done, OneEpoch&& one_epoch) {
    epochs_done = 0;
    for (int32_t epoch = 0; epoch < num_epochs; ++epoch) {
        if (rows.size() >= max_num_samples) {
            break;
        }
        one_epoch();
        ++epochs_done;
        if (epoch == 0) {
            if (rows.empty()) {
                throw_no_usable_document(min_num_sent, num_docs, counts);
            }
            reserve_epochs(rows, rows.size(), num_epochs, max_num_samples);
        }
    }
}

template <typename T>
Rows<T, 3> mapping_rows(const int64_t* docs, int64_t num_docs, const int32_t* sizes, int32_t num_epochs,
                        uint64_t max_num_samples, int32_t max_seq_length, int32_t short_seq_ratio, int32_t seed,
                        int32_t min_num_sent, DocumentCounts& counts, int32_t& epochs_done) {
    const std::vector<DocumentSpan> usable = usable_documents(docs, num_docs, sizes, min_num_sent, 2, counts);
    Rows<T, 3> rows;
    // First-epoch estimate: a sample per max_seq_length tokens plus the short tail of each document.
    reserve_epochs(rows, static_cast<uint64_t>(counts.usable_tokens / max_seq_length) + usable.size(), 1,
                   max_num_samples);
    Mt19937 rand32(static_cast<uint32_t>(seed));
    run_epochs(rows, num_epochs, max_num_samples, min_num_sent, num_docs, counts, epochs_done, [&] {
        for (const DocumentSpan& span : usable) {
            int64_t start = span.first_sentence;
            int64_t remaining = span.last_sentence - span.first_sentence;
            int64_t seq_len = 0;
            int32_t num_sent = 0;
            int32_t target = draw_target_len(short_seq_ratio, max_seq_length, rand32);
            for (int64_t sentence = span.first_sentence; sentence < span.last_sentence; ++sentence) {
                seq_len += sizes[sentence];
                ++num_sent;
                --remaining;
                if ((seq_len >= target && remaining > 1 && num_sent >= min_num_sent) || remaining == 0) {
                    rows.push_back({static_cast<T>(start), static_cast<T>(sentence + 1), static_cast<T>(target)});
                    start = sentence + 1;
                    target = draw_target_len(short_seq_ratio, max_seq_length, rand32);
                    seq_len = 0;
                    num_sent = 0;
                }
            }
        }
    });
    shuffle_rows<T, 3>(rows, seed);
    return rows;
}

template <typename T>
Rows<T, 4> blocks_rows(const int64_t* docs, int64_t num_docs, const int32_t* sizes, const int32_t* titles_sizes,
                       int32_t num_epochs, uint64_t max_num_samples, int32_t max_seq_length, int32_t seed,
                       bool use_one_sent_blocks, DocumentCounts& counts, int32_t& epochs_done) {
    const int32_t min_num_sent = use_one_sent_blocks ? 1 : 2;
    const std::vector<DocumentSpan> usable =
        usable_documents(docs, num_docs, sizes, min_num_sent, min_num_sent, counts);
    Rows<T, 4> rows;
    reserve_epochs(rows, static_cast<uint64_t>(counts.usable_tokens / max_seq_length) + usable.size(), 1,
                   max_num_samples);
    run_epochs(rows, num_epochs, max_num_samples, min_num_sent, num_docs, counts, epochs_done, [&] {
        int64_t block_id = 0;  // unique within an epoch
        for (const DocumentSpan& span : usable) {
            const int64_t target = static_cast<int64_t>(max_seq_length) - titles_sizes[span.doc];
            int64_t start = span.first_sentence;
            int64_t remaining = span.last_sentence - span.first_sentence;
            int64_t seq_len = 0;
            int32_t num_sent = 0;
            for (int64_t sentence = span.first_sentence; sentence < span.last_sentence; ++sentence) {
                seq_len += sizes[sentence];
                ++num_sent;
                --remaining;
                if ((seq_len >= target && remaining >= min_num_sent && num_sent >= min_num_sent) || remaining == 0) {
                    rows.push_back({static_cast<T>(start), static_cast<T>(sentence + 1), static_cast<T>(span.doc),
                                    static_cast<T>(block_id)});
                    ++block_id;
                    start = sentence + 1;
                    seq_len = 0;
                    num_sent = 0;
                }
            }
        }
    });
    shuffle_rows<T, 4>(rows, seed);
    return rows;
}

void check_common(int32_t num_epochs, int32_t max_seq_length, int32_t seed) {
    if (num_epochs <= 0) {
        throw std::invalid_argument("num_epochs must be positive, got " + std::to_string(num_epochs));
    }
    if (max_seq_length <= 1) {
        throw std::invalid_argument("max_seq_length must be > 1, got " + std::to_string(max_seq_length));
    }
    if (seed == std::numeric_limits<int32_t>::max()) {
        throw std::invalid_argument("seed must be below 2**31 - 1 (the shuffle uses seed + 1)");
    }
}

void print_summary(const char* what, int64_t num_docs, const DocumentCounts& counts, int32_t epochs, int64_t rows) {
    py::print(std::string("    ") + what + ": " + std::to_string(rows) + " samples in " + std::to_string(epochs) +
              " epoch(s) from " + std::to_string(num_docs) + " documents (" + std::to_string(counts.empty) +
              " empty, " + std::to_string(counts.one_sentence) + " with one sentence, " +
              std::to_string(counts.long_sentence) + " with a sentence over " + std::to_string(kLongSentenceLen) +
              " tokens)");
}

// Rows built by `build(T{}, counts, epochs)` without the GIL, in uint32 or (past 2**32 sentences) uint64, as numpy.
template <std::size_t W, typename Build>
py::array rows_of_width(const char* what, bool wide, bool verbose, int64_t num_docs, Build&& build) {
    DocumentCounts counts;
    int32_t epochs = 0;
    Rows<uint32_t, W> narrow_rows;
    Rows<uint64_t, W> wide_rows;
    {
        py::gil_scoped_release release;
        if (wide) {
            wide_rows = build(uint64_t{}, counts, epochs);
        } else {
            narrow_rows = build(uint32_t{}, counts, epochs);
        }
    }
    if (verbose) {
        const auto rows = static_cast<int64_t>(wide ? wide_rows.size() : narrow_rows.size());
        print_summary(what, num_docs, counts, epochs, rows);
    }
    return wide ? rows_to_numpy<uint64_t, W>(std::move(wide_rows)) : rows_to_numpy<uint32_t, W>(std::move(narrow_rows));
}

py::array build_mapping(const InArray<int64_t>& docs_, const InArray<int32_t>& sizes_, int32_t num_epochs,
                        uint64_t max_num_samples, int32_t max_seq_length, double short_seq_prob, int32_t seed,
                        bool verbose, int32_t min_num_sent) {
    check_common(num_epochs, max_seq_length, seed);
    if (!(short_seq_prob >= 0.0 && short_seq_prob <= 1.0)) {
        throw std::invalid_argument("short_seq_prob must be in [0, 1], got " + std::to_string(short_seq_prob));
    }
    if (docs_.ndim() != 1 || sizes_.ndim() != 1 || docs_.shape(0) < 1) {
        throw std::invalid_argument("doc_idx and sizes must be 1-D, doc_idx with at least one entry");
    }
    const int32_t short_seq_ratio =
        short_seq_prob > 0 ? static_cast<int32_t>(std::round(1.0 / short_seq_prob)) : 0;
    const int64_t* docs = docs_.data();
    const int32_t* sizes = sizes_.data();
    const int64_t num_docs = docs_.shape(0) - 1;
    const int64_t num_sentences = sizes_.shape(0);
    const bool wide = static_cast<uint64_t>(num_sentences) > std::numeric_limits<uint32_t>::max();
    return rows_of_width<3>("build_mapping", wide, verbose, num_docs,
                            [&](auto zero, DocumentCounts& counts, int32_t& epochs) {
                                check_documents(docs, num_docs, num_sentences);
                                return mapping_rows<decltype(zero)>(docs, num_docs, sizes, num_epochs,
                                                                    max_num_samples, max_seq_length, short_seq_ratio,
                                                                    seed, min_num_sent, counts, epochs);
                            });
}

py::array build_blocks_mapping(const InArray<int64_t>& docs_, const InArray<int32_t>& sizes_,
                               const InArray<int32_t>& titles_sizes_, int32_t num_epochs, uint64_t max_num_samples,
                               int32_t max_seq_length, int32_t seed, bool verbose, bool use_one_sent_blocks) {
    check_common(num_epochs, max_seq_length, seed);
    if (docs_.ndim() != 1 || sizes_.ndim() != 1 || titles_sizes_.ndim() != 1 || docs_.shape(0) < 1) {
        throw std::invalid_argument("doc_idx, sizes and titles_sizes must be 1-D, doc_idx with at least one entry");
    }
    const int64_t num_docs = docs_.shape(0) - 1;
    if (titles_sizes_.shape(0) < num_docs) {
        throw std::invalid_argument("titles_sizes needs one entry per document (" + std::to_string(num_docs) +
                                    "), got " + std::to_string(titles_sizes_.shape(0)));
    }
    const int64_t* docs = docs_.data();
    const int32_t* sizes = sizes_.data();
    const int32_t* titles_sizes = titles_sizes_.data();
    const int64_t num_sentences = sizes_.shape(0);
    const bool wide = static_cast<uint64_t>(num_sentences) > std::numeric_limits<uint32_t>::max();
    return rows_of_width<4>("build_blocks_mapping", wide, verbose, num_docs,
                            [&](auto zero, DocumentCounts& counts, int32_t& epochs) {
                                check_documents(docs, num_docs, num_sentences);
                                return blocks_rows<decltype(zero)>(docs, num_docs, sizes, titles_sizes, num_epochs,
                                                                   max_num_samples, max_seq_length, seed,
                                                                   use_one_sent_blocks, counts, epochs);
                            });
}

// Slot s goes to the dataset furthest behind its share, weights[d] * max(s, 1) - used[d]; ties to the lowest d.
// Counts are kept as doubles (exact below 2**53), so each error is the same double the original computes.
template <typename Index>
void blend_any(const double* weight, int32_t num_datasets, int64_t size, Index* out_dataset, int64_t* out_sample) {
    std::vector<double> used(static_cast<std::size_t>(num_datasets), 0.0);
    for (int64_t slot = 0; slot < size; ++slot) {
        const double slot_count = std::max(static_cast<double>(slot), 1.0);
        int32_t best = 0;
        double best_error = weight[0] * slot_count - used[0];
        for (int32_t d = 1; d < num_datasets; ++d) {
            const double error = weight[d] * slot_count - used[d];
            if (error > best_error) {
                best_error = error;
                best = d;
            }
        }
        out_dataset[slot] = static_cast<Index>(best);
        out_sample[slot] = static_cast<int64_t>(used[best]);
        used[best] += 1.0;
    }
}

// The same for a handful of datasets, with the counts in registers and selects instead of branches: each slot
// depends on the previous one, so a round trip through memory or a mispredicted branch sets the pace.
template <int D, typename Index>
void blend_few(const double* weight, int64_t size, Index* out_dataset, int64_t* out_sample) {
    double w[D];
    double used[D];
    for (int d = 0; d < D; ++d) {
        w[d] = weight[d];
        used[d] = 0.0;
    }
    for (int64_t slot = 0; slot < size; ++slot) {
        const double slot_count = std::max(static_cast<double>(slot), 1.0);
        int best = 0;
        double best_error = w[0] * slot_count - used[0];
        double best_used = used[0];
        for (int d = 1; d < D; ++d) {
            const double error = w[d] * slot_count - used[d];
            const bool better = error > best_error;
            best_error = better ? error : best_error;
            best_used = better ? used[d] : best_used;
            best = better ? d : best;
        }
        out_dataset[slot] = static_cast<Index>(best);
        out_sample[slot] = static_cast<int64_t>(best_used);
        for (int d = 0; d < D; ++d) used[d] += d == best ? 1.0 : 0.0;
    }
}

template <typename Index>
void blend(const double* weight, int32_t num_datasets, int64_t size, Index* out_dataset, int64_t* out_sample) {
    switch (num_datasets) {
        case 1: return blend_few<1>(weight, size, out_dataset, out_sample);
        case 2: return blend_few<2>(weight, size, out_dataset, out_sample);
        case 3: return blend_few<3>(weight, size, out_dataset, out_sample);
        case 4: return blend_few<4>(weight, size, out_dataset, out_sample);
        default: return blend_any(weight, num_datasets, size, out_dataset, out_sample);
    }
}

template <typename Index>
void build_blending_indices(py::array_t<Index, py::array::c_style>& dataset_index,
                            py::array_t<int64_t, py::array::c_style>& dataset_sample_index,
                            const py::array_t<double, py::array::c_style>& weights, int32_t num_datasets,
                            int64_t size, bool verbose) {
    if (num_datasets < 1 || num_datasets > static_cast<int64_t>(std::numeric_limits<Index>::max()) + 1) {
        throw std::invalid_argument("num_datasets must be in [1, " +
                                    std::to_string(static_cast<int64_t>(std::numeric_limits<Index>::max()) + 1) +
                                    "] for this index dtype, got " + std::to_string(num_datasets));
    }
    if (weights.ndim() != 1 || weights.shape(0) < num_datasets) {
        throw std::invalid_argument("weights needs num_datasets = " + std::to_string(num_datasets) + " entries");
    }
    if (size < 0 || dataset_index.ndim() != 1 || dataset_sample_index.ndim() != 1 ||
        dataset_index.shape(0) < size || dataset_sample_index.shape(0) < size) {
        throw std::invalid_argument("dataset_index and dataset_sample_index must be 1-D with at least size = " +
                                    std::to_string(size) + " entries");
    }
    Index* out_dataset = dataset_index.mutable_data();
    int64_t* out_sample = dataset_sample_index.mutable_data();
    const double* weight = weights.data();
    {
        py::gil_scoped_release release;
        blend(weight, num_datasets, size, out_dataset, out_sample);
    }
    if (verbose) {
        py::print("    build_blending_indices: " + std::to_string(size) + " slots over " +
                  std::to_string(num_datasets) + " datasets");
    }
}

// Row k: (position in doc_idx, token offset) where GPT sample k starts; samples span seq_length + 1 tokens.
py::array build_sample_idx(const InArray<int32_t>& sizes_, const InArray<int32_t>& doc_idx_, int32_t seq_length,
                           int32_t num_epochs, int64_t tokens_per_epoch) {
    if (seq_length <= 1 || num_epochs <= 0 || tokens_per_epoch <= 1) {
        throw std::invalid_argument("build_sample_idx needs seq_length > 1, num_epochs > 0, tokens_per_epoch > 1");
    }
    if (sizes_.ndim() != 1 || doc_idx_.ndim() != 1) {
        throw std::invalid_argument("sizes and doc_idx must be 1-D");
    }
    const int32_t* sizes = sizes_.data();
    const int32_t* doc_idx = doc_idx_.data();
    const int64_t num_sizes = sizes_.shape(0);
    const int64_t num_doc_idx = doc_idx_.shape(0);
    const int64_t num_samples = (static_cast<int64_t>(num_epochs) * tokens_per_epoch - 1) / seq_length;
    Rows<int32_t, 2> rows(static_cast<std::size_t>(num_samples + 1));
    {
        py::gil_scoped_release release;
        int64_t doc_idx_index = 0;
        int32_t doc_offset = 0;
        rows[0] = {0, 0};
        for (int64_t sample = 1; sample <= num_samples; ++sample) {
            int64_t remaining = static_cast<int64_t>(seq_length) + 1;
            while (remaining != 0) {
                if (doc_idx_index >= num_doc_idx) {
                    throw std::out_of_range("doc_idx ran out after " + std::to_string(sample - 1) +
                                            " samples: tokens_per_epoch exceeds the tokens doc_idx covers");
                }
                const int32_t doc_id = doc_idx[doc_idx_index];
                if (doc_id < 0 || doc_id >= num_sizes) {
                    throw std::out_of_range("doc_idx holds document " + std::to_string(doc_id) +
                                            " outside sizes (" + std::to_string(num_sizes) + ")");
                }
                const int64_t doc_length = static_cast<int64_t>(sizes[doc_id]) - doc_offset;
                remaining -= doc_length;
                if (remaining <= 0) {
                    // The -1: consecutive samples share one token (inputs and shifted labels).
                    doc_offset += static_cast<int32_t>(remaining + doc_length - 1);
                    remaining = 0;
                } else {
                    ++doc_idx_index;
                    doc_offset = 0;
                }
            }
            rows[sample] = {static_cast<int32_t>(doc_idx_index), doc_offset};
        }
    }
    return rows_to_numpy<int32_t, 2>(std::move(rows));
}

}  // namespace

PYBIND11_MODULE(_index_helpers, m) {
    m.doc() = "Index maps for the pretraining datasets; use the typed wrapper data_tools.index_helpers.";
    m.def("build_mapping", &build_mapping, py::arg("doc_idx"), py::arg("sizes"), py::arg("num_epochs"),
          py::arg("max_num_samples"), py::arg("max_seq_length"), py::arg("short_seq_prob"), py::arg("seed"),
          py::arg("verbose"), py::arg("min_num_sent"),
          "[N,3] uint32/uint64 rows (start_sentence, end_sentence_exclusive, target_seq_len), shuffled.");
    m.def("build_blocks_mapping", &build_blocks_mapping, py::arg("doc_idx"), py::arg("sizes"),
          py::arg("titles_sizes"), py::arg("num_epochs"), py::arg("max_num_samples"), py::arg("max_seq_length"),
          py::arg("seed"), py::arg("verbose"), py::arg("use_one_sent_blocks"),
          "[N,4] uint32/uint64 rows (start_sentence, end_sentence_exclusive, doc, block_id), shuffled.");
    m.def("build_blending_indices", &build_blending_indices<uint8_t>, py::arg("dataset_index").noconvert(),
          py::arg("dataset_sample_index").noconvert(), py::arg("weights").noconvert(), py::arg("num_datasets"),
          py::arg("size"), py::arg("verbose"), "Fill uint8 dataset_index and int64 dataset_sample_index in place.");
    m.def("build_blending_indices", &build_blending_indices<int16_t>, py::arg("dataset_index").noconvert(),
          py::arg("dataset_sample_index").noconvert(), py::arg("weights").noconvert(), py::arg("num_datasets"),
          py::arg("size"), py::arg("verbose"), "Fill int16 dataset_index and int64 dataset_sample_index in place.");
    m.def("build_sample_idx", &build_sample_idx, py::arg("sizes"), py::arg("doc_idx"), py::arg("seq_length"),
          py::arg("num_epochs"), py::arg("tokens_per_epoch"),
          "[num_samples+1, 2] int32 rows (position in doc_idx, token offset) where each GPT sample starts.");
}
