"""Per-document work of create_pretraining_data: JSON line -> sentences -> (WWM-marked) ids [+ knowledge spans].

Runs inside pool workers: `init_worker(config)` builds the tokenizer, segmenter and encoder once per process, and
`encode_batch(lines)` turns a batch of raw JSON lines into `EncodedDocument`s or skip reasons, in input order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ernie1.common.errors import ToolkitError
from ernie1.text.encoder import build_sentence_encoder
from ernie1.text.jsonl_corpus import RawLine, parse_json_text
from ernie1.text.knowledge import EntityDictionary, char_spans_to_token_spans, find_char_spans
from ernie1.text.segmentation import get_word_segmenter


@dataclass(frozen=True)
class EncodeConfig:
    """Everything a worker needs to rebuild its tokenizer and encode documents (picklable)."""

    model_name: str
    tokenizer_name: str = "ErnieTokenizer"
    json_key: str = "text"
    split_sentences: bool = False
    chinese: bool = False
    whole_word_segment: bool = False
    cn_seg_func: str = "jieba"
    cn_splited: bool = False
    cn_split_dimer: str = " "
    append_eos: bool = False
    knowledge_spans: bool = False
    entity_dict: Optional[str] = None


@dataclass
class EncodedDocument:
    """One document's non-empty sentences as id arrays, their knowledge spans (or None), and its UTF-8 size."""

    sentences: List[np.ndarray]
    spans: Optional[List[Tuple[np.ndarray, np.ndarray, np.ndarray]]]
    num_bytes: int


# (file index, line number, reason) for a skipped line.
Skipped = Tuple[int, int, str]
BatchResult = List[Union[EncodedDocument, Skipped]]


def build_tokenizer(config: EncodeConfig) -> Any:
    """The tokenizer, `##`-extended when whole-word marking is on (the stored ids then use the extension)."""
    from ernie1.text.tokenizer import extend_chinese_char, load_tokenizer

    tokenizer = load_tokenizer(config.model_name, config.tokenizer_name)
    if config.whole_word_segment:
        extend_chinese_char(tokenizer)
    return tokenizer


def eos_id(tokenizer: Any) -> int:
    """End-of-document id for --append_eos: the eos token, or [SEP] for WordPiece vocabs that have none."""
    for token_id in (getattr(tokenizer, "eos_token_id", None), getattr(tokenizer, "sep_token_id", None)):
        if token_id is not None:
            return int(token_id)
    raise ToolkitError("--append_eos: the tokenizer has neither an eos nor a [SEP] token")


def restore_split_dimers(words: List[str], dimer: str) -> List[str]:
    """Undo `text.split(dimer)` eating original dimers: in a run of empty pieces, every second one was a dimer.

    (Pre-segmented text joins words with the dimer, so an original space shows up as two consecutive empty pieces.)
    """
    restored = list(words)
    previous_empty = False
    for index, word in enumerate(restored):
        if word:
            previous_empty = False
        elif previous_empty:
            restored[index] = dimer
            previous_empty = False
        else:
            previous_empty = True
    return restored


def split_document(text: str, config: EncodeConfig) -> List[str]:
    """Sentences of a document: newline-separated with --split_sentences --chinese, else the whole document."""
    if config.split_sentences:
        return text.split("\n")
    return [text]


class DocumentEncoder:
    """Encodes documents for one configuration; built once per worker process."""

    def __init__(self, config: EncodeConfig):
        self.config = config
        self.tokenizer = build_tokenizer(config)
        self.encoder = build_sentence_encoder(self.tokenizer, config.whole_word_segment)
        self.segment: Optional[Callable[[str], List[str]]] = None
        if config.whole_word_segment and not config.cn_splited:
            self.segment = get_word_segmenter(config.cn_seg_func)
        self.eos_id = eos_id(self.tokenizer) if config.append_eos else None
        self.entity_dict = None
        if config.knowledge_spans and config.entity_dict:
            self.entity_dict = EntityDictionary.from_file(config.entity_dict)

    def _words(self, sentence: str) -> Optional[List[str]]:
        if not self.config.whole_word_segment:
            return None
        if self.config.cn_splited:
            return restore_split_dimers(sentence.split(self.config.cn_split_dimer), self.config.cn_split_dimer)
        return self.segment(sentence)

    def encode_documents(self, texts: Sequence[str]) -> List[EncodedDocument]:
        """Encode several documents with one batched encoder call (much faster than sentence by sentence)."""
        sentence_texts: List[str] = []
        words_list: Optional[List[List[str]]] = [] if self.config.whole_word_segment else None
        owners: List[int] = []  # document index of each sentence
        for doc_index, text in enumerate(texts):
            for sentence in split_document(text, self.config):
                sentence = sentence.strip()
                if not sentence:
                    continue
                if words_list is not None:
                    words = self._words(sentence)
                    words_list.append(words)
                    sentence = "".join(words)
                sentence_texts.append(sentence)
                owners.append(doc_index)
        batch = self.encoder.encode_batch(sentence_texts, words_list, return_char_offsets=self.config.knowledge_spans)
        ids_per_sentence = batch.split()
        offsets_per_sentence = batch.split_char_offsets() if self.config.knowledge_spans else None
        documents = [
            EncodedDocument([], [] if self.config.knowledge_spans else None, len(text.encode("utf-8")))
            for text in texts
        ]
        for index, (doc_index, ids) in enumerate(zip(owners, ids_per_sentence)):
            if len(ids) == 0:
                continue
            document = documents[doc_index]
            document.sentences.append(ids)
            if offsets_per_sentence is not None:
                spans = find_char_spans(sentence_texts[index], self.entity_dict, self.config.cn_seg_func)
                document.spans.append(char_spans_to_token_spans(spans, offsets_per_sentence[index]))
        if self.eos_id is not None:
            for document in documents:
                if document.sentences:
                    document.sentences[-1] = np.append(document.sentences[-1], np.int64(self.eos_id))
        return documents

    def encode_document(self, text: str) -> EncodedDocument:
        """All non-empty sentences of one document (eos appended to the last one with --append_eos)."""
        return self.encode_documents([text])[0]


_WORKER: Optional[DocumentEncoder] = None


def init_worker(config: EncodeConfig, encoder: Optional[DocumentEncoder] = None) -> None:
    """Pool initializer: build this process's encoder once (or adopt one already built in this process)."""
    global _WORKER
    _WORKER = encoder if encoder is not None else DocumentEncoder(config)


def encode_batch(lines: Sequence[RawLine]) -> BatchResult:
    """Encode a batch of raw JSON lines in order; unusable lines, and documents that are empty once cleaned, come back
    as (file index, line number, reason)."""
    assert _WORKER is not None, "init_worker() must run first"
    results: BatchResult = []
    texts: List[str] = []
    text_slots: List[int] = []
    for file_index, line_number, raw in lines:
        text, reason = parse_json_text(raw, _WORKER.config.json_key)
        if reason is not None:
            results.append((file_index, line_number, reason))
        else:
            text_slots.append(len(results))
            results.append((file_index, line_number, "no_content"))  # replaced below unless the document is empty
            texts.append(text)
    for slot, document in zip(text_slots, _WORKER.encode_documents(texts)):
        if document.sentences:
            results[slot] = document
    return results
