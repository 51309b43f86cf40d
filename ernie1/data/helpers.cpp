// Index helpers for the pretraining datasets (pybind11 module `ernie1.data._index_helpers`).
//
// Four functions with the semantics of the original's `helpers` module (Megatron-LM lineage), so that an index map
// cached by the original is reproduced bit for bit: `build_mapping` (ERNIE/BERT sample map), `build_blocks_mapping`
// (REALM/ICT blocks), `build_blending_indices` (dataset blending) and `build_sample_idx` (GPT samples); and
// `write_mapping`, build_mapping's rows written straight into the index-map cache file.
// Differences that never change the output for valid input: one pass instead of count-then-fill, into one
// anonymous mapping that grows without copying and asks for transparent huge pages (a seed-scale map is 6 GB: 3,000
// page faults instead of 1.5 M, and the shuffle's random swaps stay within the TLB), its pages faulted in by a
// second thread ahead of the rows, and handed to numpy as is; a document that fits its first sample whole skips
// the pass over its sentences; the document filter computed once instead of once per epoch; the GIL released during
// the loops; bounds checked; and a clear exception instead of an endless epoch loop when no document is usable
// (REFERENCE §18.15). Seed scale (512 M samples from 150 M sentences) and why: docs/guide/datasets.md.
// The typed Python wrapper is `ernie1/data/index_helpers.py`; call that, not this module.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(_WIN32)
#include <io.h>
#else
#include <unistd.h>
#endif

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

// A growable array of rows in memory that numpy can own. On Linux it is one anonymous mapping: it grows with
// mremap, which moves page tables instead of copying rows, and asks for transparent huge pages; only the pages
// written count as resident, so growing by doubling costs address space, not memory. Elsewhere, malloc/realloc.
template <typename T, std::size_t Width>
class Rows {
   public:
    using Row = std::array<T, Width>;
    static_assert(sizeof(Row) == Width * sizeof(T), "rows must be packed");

    Rows() = default;
    Rows(const Rows&) = delete;
    Rows& operator=(const Rows&) = delete;
    Rows(Rows&& other) noexcept { *this = std::move(other); }
    Rows& operator=(Rows&& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(size_, other.size_);
        std::swap(capacity_bytes_, other.capacity_bytes_);
        return *this;
    }
    ~Rows() { free_memory(data_, capacity_bytes_); }

    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    Row& operator[](std::size_t index) { return data_[index]; }
    Row* data() { return data_; }

    void push_back(const Row& row) {
        if ((size_ + 1) * sizeof(Row) > capacity_bytes_) {
            reserve(std::max<std::size_t>(2 * size_, kFirstRows));
        }
        data_[size_++] = row;
    }

    // Room for `rows` rows, then `rows` of them (uninitialised: the caller writes each one).
    void resize(std::size_t rows) {
        reserve(rows);
        size_ = rows;
    }

    // Room for `rows` rows, never copying the rows already written (on Linux).
    void reserve(std::size_t rows) {
        if (rows > std::numeric_limits<std::size_t>::max() / sizeof(Row) - kHugePage) {
            throw std::bad_alloc();
        }
        const std::size_t bytes = (rows * sizeof(Row) + kHugePage - 1) / kHugePage * kHugePage;
        if (bytes <= capacity_bytes_) {
            return;
        }
        data_ = static_cast<Row*>(grow_memory(data_, capacity_bytes_, bytes));
        capacity_bytes_ = bytes;
    }

    // Gives back the pages past the last row (a prefault may have gone further than the rows did).
    void trim() {
#if defined(__linux__)
        const std::size_t used = (size_ * sizeof(Row) + kHugePage - 1) / kHugePage * kHugePage;
        if (data_ != nullptr && used < capacity_bytes_) {
            madvise(reinterpret_cast<char*>(data_) + used, capacity_bytes_ - used, MADV_DONTNEED);
        }
#endif
    }

    // A numpy array [size, Width] over these rows, which it then owns (no copy).
    py::array to_numpy() && {
        const std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(size_), static_cast<py::ssize_t>(Width)};
        if (size_ == 0) {
            return py::array_t<T>(shape);
        }
        auto* owned = new Rows(std::move(*this));
        py::capsule free_when_done(owned, [](void* pointer) { delete static_cast<Rows*>(pointer); });
        return py::array_t<T>(shape, owned->data_->data(), free_when_done);
    }

   private:
    static constexpr std::size_t kHugePage = std::size_t{2} << 20;
    static constexpr std::size_t kFirstRows = kHugePage / sizeof(Row);

    static void* grow_memory(void* old, std::size_t old_bytes, std::size_t bytes) {
#if defined(__linux__)
        void* grown = old == nullptr
                          ? mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                                 -1, 0)
                          : mremap(old, old_bytes, bytes, MREMAP_MAYMOVE);
        if (grown == MAP_FAILED) {
            throw std::bad_alloc();
        }
#ifdef MADV_HUGEPAGE
        madvise(grown, bytes, MADV_HUGEPAGE);  // advice only: without huge pages the rows are the same
#endif
        return grown;
#else
        (void)old_bytes;
        void* grown = std::realloc(old, bytes);
        if (grown == nullptr) {
            throw std::bad_alloc();
        }
        return grown;
#endif
    }

    static void free_memory(void* memory, std::size_t bytes) {
        if (memory == nullptr) {
            return;
        }
#if defined(__linux__)
        munmap(memory, bytes);
#else
        (void)bytes;
        std::free(memory);
#endif
    }

    Row* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_bytes_ = 0;
};

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

struct NoProgress {
    void operator()(int64_t) const {}
};

// Fisher-Yates from the end with mt19937_64(seed + 1), as the original shuffles its maps. The swap partners are
// drawn a few rows ahead (same draws, same order) so their cache lines can be fetched before they are needed.
// Step i settles row i for good, so rows [i, N) are final after it: `settled(i)` is told so every 2**16 rows.
template <typename T, std::size_t Width, typename Settled = NoProgress>
void shuffle_rows(Rows<T, Width>& rows, int32_t seed, Settled&& settled = {}) {
    constexpr int64_t kAhead = 16;
    constexpr int64_t kSettledEvery = int64_t{1} << 16;
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
        if (i % kSettledEvery == 0) settled(i);
    }
}

// Writes rows [from, N) of a buffer to `fd` (at `offset` + from * row_bytes) from a second thread as the shuffle
// settles them, last rows first, so the write of a 6 GB map overlaps the shuffle instead of following it.
class SettledRowsWriter {
   public:
    SettledRowsWriter(const void* data, int64_t num_rows, std::size_t row_bytes, int fd, int64_t offset)
        : data_(static_cast<const char*>(data)),
          row_bytes_(row_bytes),
          fd_(fd),
          offset_(offset),
          written_from_(num_rows),
          settled_from_(num_rows) {
        thread_ = std::thread([this] { run(); });
    }
    SettledRowsWriter(const SettledRowsWriter&) = delete;
    SettledRowsWriter& operator=(const SettledRowsWriter&) = delete;
    ~SettledRowsWriter() {
        if (thread_.joinable()) {
            finish();
        }
    }

    // Rows [from, N) will not change again.
    void operator()(int64_t from) { settled_from_.store(from, std::memory_order_release); }

    // Writes the rest once every row is settled; the errno of the first failed write, 0 when all went out.
    int finish() {
        settled_from_.store(0, std::memory_order_release);
        thread_.join();
        return error_;
    }

   private:
    static constexpr int64_t kChunkBytes = int64_t{16} << 20;

    void run() {
        const int64_t chunk_rows = std::max<int64_t>(1, kChunkBytes / static_cast<int64_t>(row_bytes_));
        while (written_from_ > 0) {
            const int64_t settled = settled_from_.load(std::memory_order_acquire);
            if (settled > 0 && written_from_ - settled < chunk_rows) {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                continue;
            }
            const int64_t from = std::max(settled, written_from_ - chunk_rows);
            if (!write_rows(from, written_from_)) {
                return;
            }
            written_from_ = from;
        }
    }

    bool write_rows(int64_t first, int64_t last) {
        const char* next = data_ + static_cast<std::size_t>(first) * row_bytes_;
        std::size_t left = static_cast<std::size_t>(last - first) * row_bytes_;
        int64_t at = offset_ + first * static_cast<int64_t>(row_bytes_);
        while (left > 0) {
            const std::size_t piece = std::min<std::size_t>(left, std::size_t{1} << 30);
            const int64_t wrote = write_at(next, piece, at);
            if (wrote < 0 && errno == EINTR) {
                continue;
            }
            if (wrote <= 0) {
                error_ = wrote < 0 ? errno : EIO;
                return false;
            }
            next += wrote;
            left -= static_cast<std::size_t>(wrote);
            at += wrote;
        }
        return true;
    }

    int64_t write_at(const char* bytes, std::size_t count, int64_t at) const {
#if defined(_WIN32)
        // Only this thread writes to the file while it runs, so seek-then-write is positional.
        if (_lseeki64(fd_, at, SEEK_SET) < 0) return -1;
        return _write(fd_, bytes, static_cast<unsigned int>(std::min<std::size_t>(count, 1u << 30)));
#else
        return pwrite(fd_, bytes, count, static_cast<off_t>(at));
#endif
    }

    const char* data_;
    std::size_t row_bytes_;
    int fd_;
    int64_t offset_;
    int64_t written_from_;  // rows [written_from_, N) are in the file; the writer thread's own
    std::atomic<int64_t> settled_from_;
    int error_ = 0;
    std::thread thread_;
};

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

struct DocumentCounts {
    int64_t empty = 0;
    int64_t one_sentence = 0;
    int64_t long_sentence = 0;
    int64_t usable_tokens = 0;
    int64_t usable_sentences = 0;
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

// Documents the original would visit, in order (their ids: 8 bytes each, read with doc_idx for their sentences).
// `long_check_min` is the sentence count from which a document is scanned for long sentences: 2 for build_mapping,
// min_num_sent for build_blocks_mapping (as in the original).
std::vector<int64_t> usable_documents(const int64_t* docs, int64_t num_docs, const int32_t* sizes,
                                      int64_t min_num_sent, int64_t long_check_min, DocumentCounts& counts) {
    std::vector<int64_t> usable;
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
            usable.push_back(doc);
            counts.usable_tokens += tokens;
            counts.usable_sentences += num_sent;
        }
    }
    return usable;
}

// For each usable document, the most tokens a sample starting at its first sentence holds while at least two
// sentences follow it (the largest prefix sum over its sentences but the last two), clamped to int32; INT32_MIN
// when it has at most two sentences. A first sample cuts the document early only when its target length reaches
// this, so a document whose value is below the target is one whole-document sample (REFERENCE §4) and needs no pass
// over its sentences: most documents, in a corpus of documents shorter than max_seq_length.
std::vector<int32_t> early_cut_tokens(const int64_t* docs, const std::vector<int64_t>& usable, const int32_t* sizes) {
    std::vector<int32_t> tokens(usable.size());
    for (std::size_t index = 0; index < usable.size(); ++index) {
        const int64_t doc = usable[index];
        int64_t sum = 0;
        int64_t most = std::numeric_limits<int32_t>::min();
        for (int64_t sentence = docs[doc]; sentence < docs[doc + 1] - 2; ++sentence) {
            sum += sizes[sentence];
            most = std::max(most, sum);
        }
        tokens[index] = static_cast<int32_t>(std::min<int64_t>(most, std::numeric_limits<int32_t>::max()));
    }
    return tokens;
}

[[noreturn]] void throw_no_usable_document(int64_t min_num_sent, int64_t num_docs, const DocumentCounts& counts) {
    throw std::invalid_argument(
        "no usable document: every one of the " + std::to_string(num_docs) + " documents has fewer than " +
        std::to_string(min_num_sent) + " sentences or a sentence longer than " + std::to_string(kLongSentenceLen) +
        " tokens (" + std::to_string(counts.empty) + " empty, " + std::to_string(counts.one_sentence) +
        " with one sentence, " + std::to_string(counts.long_sentence) + " with a long sentence)");
}

// Faults in a range of fresh memory from a second thread while the first one fills it, so that zeroing the pages
// (a third of the time of a 6 GB map on a VM) is off the critical path. MADV_POPULATE_WRITE maps the pages as a
// write would but leaves their contents alone, so it may safely run behind or ahead of the writer. Linux 5.14+;
// elsewhere nothing happens. The range must stay mapped (no growth of the buffer) until this object is gone.
class Prefaulter {
   public:
    Prefaulter() = default;
    Prefaulter(const Prefaulter&) = delete;
    Prefaulter& operator=(const Prefaulter&) = delete;
    ~Prefaulter() { stop(); }

    void start(void* begin, std::size_t bytes) {
        stop();
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
        // madvise wants a page-aligned start; the rows before it were written already.
        const auto first = (reinterpret_cast<std::uintptr_t>(begin) + kPage - 1) / kPage * kPage;
        const auto last = reinterpret_cast<std::uintptr_t>(begin) + bytes;
        if (last <= first) {
            return;
        }
        stopping_.store(false);
        thread_ = std::thread([this, first, last] {
            for (std::uintptr_t at = first; at < last && !stopping_.load(std::memory_order_relaxed); at += kStep) {
                if (madvise(reinterpret_cast<void*>(at), std::min<std::uintptr_t>(kStep, last - at),
                            MADV_POPULATE_WRITE) != 0) {
                    return;  // an old kernel or no memory left: the writer faults the pages in itself
                }
            }
        });
#else
        (void)begin;
        (void)bytes;
#endif
    }

    void stop() {
        stopping_.store(true);
        if (thread_.joinable()) {
            thread_.join();
        }
    }

   private:
    static constexpr std::uintptr_t kPage = std::uintptr_t{2} << 20;
    static constexpr std::uintptr_t kStep = std::uintptr_t{32} << 20;

    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

// After the first epoch: room for every row the remaining epochs can add, so the buffer never moves again (address
// space only: each row holds at least one sentence of a usable document), and the pages the expected number of
// epochs will fill faulted in ahead of the writer.
template <typename Buffer>
void prepare_epochs(Buffer& rows, Prefaulter& prefaulter, uint64_t usable_sentences, int32_t num_epochs,
                    uint64_t max_num_samples) {
    const long double rows_per_epoch = static_cast<long double>(rows.size());
    const long double most = std::min(static_cast<long double>(usable_sentences) * num_epochs,
                                      static_cast<long double>(max_num_samples) + usable_sentences);
    if (most * sizeof(rows[0]) >= static_cast<long double>(uint64_t{1} << 40)) {
        return;  // absurd requests grow as they go instead
    }
    const long double epochs = std::min(static_cast<long double>(num_epochs),
                                        std::ceil(static_cast<long double>(max_num_samples) / rows_per_epoch));
    const auto expected = static_cast<std::size_t>(std::min(most, epochs * rows_per_epoch));
    rows.reserve(static_cast<std::size_t>(most));
    if (expected > rows.size()) {
        prefaulter.start(rows.data() + rows.size(), (expected - rows.size()) * sizeof(rows[0]));
    }
}

// Whole epochs of `one_epoch()` (which appends one epoch's rows) until `max_num_samples` rows exist or
// `num_epochs` ran. The original loops over epochs forever when the first one yields nothing (PaddleNLP #2555,
// #3214): fail fast instead, and once the first epoch's size is known, reserve room for the rest.
template <typename Buffer, typename OneEpoch>
void run_epochs(Buffer& rows, int32_t num_epochs, uint64_t max_num_samples, int64_t min_num_sent,
                int64_t num_docs, const DocumentCounts& counts, int32_t& epochs_done, OneEpoch&& one_epoch) {
    Prefaulter prefaulter;
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
            prepare_epochs(rows, prefaulter, static_cast<uint64_t>(counts.usable_sentences), num_epochs,
                           max_num_samples);
        }
    }
    prefaulter.stop();
    rows.trim();
}

template <typename T>
Rows<T, 3> mapping_rows(const int64_t* docs, int64_t num_docs, const int32_t* sizes, int32_t num_epochs,
                        uint64_t max_num_samples, int32_t max_seq_length, int32_t short_seq_ratio, int32_t seed,
                        int32_t min_num_sent, DocumentCounts& counts, int32_t& epochs_done) {
    const std::vector<int64_t> usable = usable_documents(docs, num_docs, sizes, min_num_sent, 2, counts);
    const std::vector<int32_t> cut_tokens = early_cut_tokens(docs, usable, sizes);
    Rows<T, 3> rows;
    // First-epoch estimate: a sample per max_seq_length tokens plus the short tail of each document.
    rows.reserve(std::min<uint64_t>(static_cast<uint64_t>(counts.usable_tokens / max_seq_length) + usable.size(),
                                    max_num_samples));
    Mt19937 rand32(static_cast<uint32_t>(seed));
    run_epochs(rows, num_epochs, max_num_samples, min_num_sent, num_docs, counts, epochs_done, [&] {
        for (std::size_t index = 0; index < usable.size(); ++index) {
            const int64_t doc = usable[index];
            const int64_t first = docs[doc];
            const int64_t last = docs[doc + 1];
            int32_t target = draw_target_len(short_seq_ratio, max_seq_length, rand32);
            if (cut_tokens[index] < target) {
                rows.push_back({static_cast<T>(first), static_cast<T>(last), static_cast<T>(target)});
                draw_target_len(short_seq_ratio, max_seq_length, rand32);  // the original draws after every sample
                continue;
            }
            int64_t start = first;
            int64_t remaining = last - first;
            int64_t seq_len = 0;
            int32_t num_sent = 0;
            for (int64_t sentence = first; sentence < last; ++sentence) {
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
    return rows;
}

template <typename T>
Rows<T, 4> blocks_rows(const int64_t* docs, int64_t num_docs, const int32_t* sizes, const int32_t* titles_sizes,
                       int32_t num_epochs, uint64_t max_num_samples, int32_t max_seq_length, int32_t seed,
                       bool use_one_sent_blocks, DocumentCounts& counts, int32_t& epochs_done) {
    const int32_t min_num_sent = use_one_sent_blocks ? 1 : 2;
    const std::vector<int64_t> usable = usable_documents(docs, num_docs, sizes, min_num_sent, min_num_sent, counts);
    Rows<T, 4> rows;
    rows.reserve(std::min<uint64_t>(static_cast<uint64_t>(counts.usable_tokens / max_seq_length) + usable.size(),
                                    max_num_samples));
    run_epochs(rows, num_epochs, max_num_samples, min_num_sent, num_docs, counts, epochs_done, [&] {
        int64_t block_id = 0;  // unique within an epoch
        for (const int64_t doc : usable) {
            const int64_t target = static_cast<int64_t>(max_seq_length) - titles_sizes[doc];
            const int64_t first = docs[doc];
            const int64_t last = docs[doc + 1];
            int64_t start = first;
            int64_t remaining = last - first;
            int64_t seq_len = 0;
            int32_t num_sent = 0;
            for (int64_t sentence = first; sentence < last; ++sentence) {
                seq_len += sizes[sentence];
                ++num_sent;
                --remaining;
                if ((seq_len >= target && remaining >= min_num_sent && num_sent >= min_num_sent) || remaining == 0) {
                    rows.push_back({static_cast<T>(start), static_cast<T>(sentence + 1), static_cast<T>(doc),
                                    static_cast<T>(block_id)});
                    ++block_id;
                    start = sentence + 1;
                    seq_len = 0;
                    num_sent = 0;
                }
            }
        }
    });
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

// Rows built by `build(T{}, counts, epochs)` and settled by `settle(rows)` (shuffled, maybe written) without the
// GIL, in uint32 or (past 2**32 sentences) uint64; `deliver(std::move(rows))` makes the Python result of them.
template <std::size_t W, typename Build, typename Settle, typename Deliver>
py::object rows_of_width(const char* what, bool wide, bool verbose, int64_t num_docs, Build&& build, Settle&& settle,
                         Deliver&& deliver) {
    DocumentCounts counts;
    int32_t epochs = 0;
    Rows<uint32_t, W> narrow_rows;
    Rows<uint64_t, W> wide_rows;
    {
        py::gil_scoped_release release;
        if (wide) {
            wide_rows = build(uint64_t{}, counts, epochs);
            settle(wide_rows);
        } else {
            narrow_rows = build(uint32_t{}, counts, epochs);
            settle(narrow_rows);
        }
    }
    if (verbose) {
        const auto rows = static_cast<int64_t>(wide ? wide_rows.size() : narrow_rows.size());
        print_summary(what, num_docs, counts, epochs, rows);
    }
    return wide ? deliver(std::move(wide_rows)) : deliver(std::move(narrow_rows));
}

// The arguments of build_mapping, checked, with the raw pointers the loops read.
struct MappingRequest {
    const int64_t* docs;
    const int32_t* sizes;
    int64_t num_docs;
    int64_t num_sentences;
    int32_t short_seq_ratio;
    bool wide;
};

MappingRequest mapping_request(const InArray<int64_t>& docs, const InArray<int32_t>& sizes, int32_t num_epochs,
                               int32_t max_seq_length, double short_seq_prob, int32_t seed) {
    check_common(num_epochs, max_seq_length, seed);
    if (!(short_seq_prob >= 0.0 && short_seq_prob <= 1.0)) {
        throw std::invalid_argument("short_seq_prob must be in [0, 1], got " + std::to_string(short_seq_prob));
    }
    if (docs.ndim() != 1 || sizes.ndim() != 1 || docs.shape(0) < 1) {
        throw std::invalid_argument("doc_idx and sizes must be 1-D, doc_idx with at least one entry");
    }
    const int64_t num_sentences = sizes.shape(0);
    return {docs.data(),
            sizes.data(),
            docs.shape(0) - 1,
            num_sentences,
            short_seq_prob > 0 ? static_cast<int32_t>(std::round(1.0 / short_seq_prob)) : 0,
            static_cast<uint64_t>(num_sentences) > std::numeric_limits<uint32_t>::max()};
}

template <typename Settle, typename Deliver>
py::object mapping(const MappingRequest& request, int32_t num_epochs, uint64_t max_num_samples,
                   int32_t max_seq_length, int32_t seed, bool verbose, int32_t min_num_sent, Settle&& settle,
                   Deliver&& deliver) {
    const MappingRequest& r = request;
    return rows_of_width<3>(
        "build_mapping", r.wide, verbose, r.num_docs,
        [&](auto zero, DocumentCounts& counts, int32_t& epochs) {
            check_documents(r.docs, r.num_docs, r.num_sentences);
            return mapping_rows<decltype(zero)>(r.docs, r.num_docs, r.sizes, num_epochs, max_num_samples,
                                                max_seq_length, r.short_seq_ratio, seed, min_num_sent, counts,
                                                epochs);
        },
        settle, deliver);
}

py::object build_mapping(const InArray<int64_t>& docs, const InArray<int32_t>& sizes, int32_t num_epochs,
                         uint64_t max_num_samples, int32_t max_seq_length, double short_seq_prob, int32_t seed,
                         bool verbose, int32_t min_num_sent) {
    const MappingRequest request = mapping_request(docs, sizes, num_epochs, max_seq_length, short_seq_prob, seed);
    return mapping(
        request, num_epochs, max_num_samples, max_seq_length, seed, verbose, min_num_sent,
        [&](auto& rows) { shuffle_rows(rows, seed); }, [](auto&& rows) -> py::object { return std::move(rows).to_numpy(); });
}

// build_mapping's rows written to the open file `fd` from byte `offset` on (the caller writes the .npy header
// before them): the shuffle settles rows from the last one down, and a second thread writes them as it goes.
// Returns (rows, uint64 rows?); a failed write raises OSError with its errno.
py::object write_mapping(int fd, int64_t offset, const InArray<int64_t>& docs, const InArray<int32_t>& sizes,
                         int32_t num_epochs, uint64_t max_num_samples, int32_t max_seq_length, double short_seq_prob,
                         int32_t seed, bool verbose, int32_t min_num_sent) {
    if (fd < 0 || offset < 0) {
        throw std::invalid_argument("write_mapping needs an open file descriptor and a non-negative offset");
    }
    const MappingRequest request = mapping_request(docs, sizes, num_epochs, max_seq_length, short_seq_prob, seed);
    int error = 0;
    return mapping(
        request, num_epochs, max_num_samples, max_seq_length, seed, verbose, min_num_sent,
        [&](auto& rows) {
            SettledRowsWriter writer(rows.data(), static_cast<int64_t>(rows.size()), sizeof(rows[0]), fd, offset);
            shuffle_rows(rows, seed, writer);
            error = writer.finish();
        },
        [&](auto&& rows) -> py::object {
            if (error != 0) {
                errno = error;
                PyErr_SetFromErrno(PyExc_OSError);
                throw py::error_already_set();
            }
            return py::make_tuple(rows.size(), request.wide);
        });
}

py::object build_blocks_mapping(const InArray<int64_t>& docs_, const InArray<int32_t>& sizes_,
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
    return rows_of_width<4>(
        "build_blocks_mapping", wide, verbose, num_docs,
        [&](auto zero, DocumentCounts& counts, int32_t& epochs) {
            check_documents(docs, num_docs, num_sentences);
            return blocks_rows<decltype(zero)>(docs, num_docs, sizes, titles_sizes, num_epochs, max_num_samples,
                                               max_seq_length, seed, use_one_sent_blocks, counts, epochs);
        },
        [&](auto& rows) { shuffle_rows(rows, seed); },
        [](auto&& rows) -> py::object { return std::move(rows).to_numpy(); });
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
    Rows<int32_t, 2> rows;
    rows.resize(static_cast<std::size_t>(num_samples + 1));
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
    return std::move(rows).to_numpy();
}

}  // namespace

PYBIND11_MODULE(_index_helpers, m) {
    m.doc() = "Index maps for the pretraining datasets; use the typed wrapper data_tools.index_helpers.";
    m.def("build_mapping", &build_mapping, py::arg("doc_idx"), py::arg("sizes"), py::arg("num_epochs"),
          py::arg("max_num_samples"), py::arg("max_seq_length"), py::arg("short_seq_prob"), py::arg("seed"),
          py::arg("verbose"), py::arg("min_num_sent"),
          "[N,3] uint32/uint64 rows (start_sentence, end_sentence_exclusive, target_seq_len), shuffled.");
    m.def("write_mapping", &write_mapping, py::arg("fd"), py::arg("offset"), py::arg("doc_idx"), py::arg("sizes"),
          py::arg("num_epochs"), py::arg("max_num_samples"), py::arg("max_seq_length"), py::arg("short_seq_prob"),
          py::arg("seed"), py::arg("verbose"), py::arg("min_num_sent"),
          "build_mapping's rows written to the file fd from byte offset on; returns (rows, uint64 rows?).");
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
