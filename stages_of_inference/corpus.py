"""Read a text corpus and cut it into BOS-prefixed token windows for the metrics.

Every tensor of tokens a metric sees was made here, by :func:`load_corpus` (or
:func:`load_corpus_with_record`, which also says which documents the windows hold),
under these rules; which of its positions are scored is
:mod:`stages_of_inference.tokens`'s policy.

Windows:
    ``load_corpus`` returns ``n_tokens // seq_len`` windows of ``seq_len`` tokens,
    as a ``torch.long`` tensor of shape ``[n_windows, seq_len]``; ``n_tokens`` must
    be at least ``seq_len``, and ``seq_len`` at least 3 and at most the model's
    context (``max_context``, or the model's ``cfg.n_ctx``). Each window is
    ``[BOS] + (seq_len - 1)`` consecutive text tokens. Position 0 is always BOS;
    the predictions made at positions ``1 .. seq_len - 2`` are scored, each against
    the next token (the prediction at BOS is not scored, and the last position has
    no next token in the window), so each window yields ``seq_len - 2`` scored
    positions (:func:`~stages_of_inference.tokens.scored_positions`).

BOS and separator tokens:
    BOS is ``tokenizer.bos_token_id``, or ``tokenizer.eos_token_id`` when the
    tokenizer has no BOS token (GPT-2 style); a tokenizer with neither is an error.
    Each document is tokenized without special tokens (``add_special_tokens=False``).
    The documents' token streams are joined with one separator token between two
    documents: the EOS token, or the BOS token when there is no EOS. The joined
    stream is cut into consecutive chunks of ``seq_len - 1`` tokens, so a window
    may start mid-document and span a document boundary; the incomplete tail is
    dropped. Documents that tokenize to nothing are skipped. Reading stops as soon
    as enough windows are collected, so a streamed dataset is read only that far.

Document order:
    ``seed=None`` keeps the source's stored order: the first documents, unshuffled
    (the paper's convention). ``seed=<int>`` shuffles deterministically: a local or
    embedded source is read whole and permuted by ``random.Random(seed)``
    (the ``prose`` mix permutes each genre's excerpts so, then interleaves them:
    :mod:`stages_of_inference.corpora.mix`); a Hugging Face dataset is shuffled by
    ``dataset.shuffle(seed=seed, buffer_size=10_000)`` on the stream. The same
    arguments always give the same tensor.

Sources:
    An embedded corpus by name (:data:`stages_of_inference.corpora.EMBEDDED_CORPORA`):
    real English text inside installed packages, read offline. ``"prose"`` (the
    default: State of the Union addresses, Wikipedia articles and BBC News in equal
    shares), its parts ``"sotu"``, ``"wikipedia"`` and ``"bbc-news"``, and
    ``"python-docs"`` (the topic texts of CPython's documentation). ``"embedded"``
    (:data:`EMBEDDED_CORPUS`) is another name for the default, ``"prose"``; until
    the prose corpora were added it meant ``"python-docs"``. ``docs/corpora.md``
    describes each (genre, licence, size in tokens).

    A local file, read as data only (never unpickled or evaluated):
    ``.txt``/``.md`` (the whole file is one document), ``.jsonl`` (one JSON object a
    line, text in field ``text_field``; blank lines are skipped), ``.parquet``
    (column ``text_field``, read with pyarrow) or ``.json`` (a list of strings, or
    of objects with field ``text_field``). Files are UTF-8. A folder stands for
    every such file below it, recursively, in sorted path order.

    Anything else that is not an existing path is taken as a Hugging Face dataset
    name and streamed with ``datasets.load_dataset(source, split=split,
    streaming=True)``, e.g. ``"monology/pile-uncopyrighted"`` for the Pile. A
    source that does not exist but looks like a path (absolute, starting with
    ``.`` or ``~``, holding a backslash or more than one ``/``, or ending in a
    supported suffix) is reported as a missing path instead. When
    ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` is set, or the Hub does not answer
    within :data:`HUB_TIMEOUT_S` seconds, a dataset name fails at once rather than
    after the Hub client's retries. A folder named like an embedded corpus (e.g.
    ``prose``) must be passed as ``"./prose"``.

Document ids:
    Every document has an id, recorded by :func:`load_corpus_with_record`: an
    embedded corpus's own ids (``sotu/1790-Washington-1``; ``...#k`` for excerpt
    ``k`` in the ``prose`` mix), ``<file>`` for a text file, ``<file>:<line>`` for
    a jsonl line, ``<file>[<index>]`` for a json item or parquet row, and
    ``<dataset>[<index>]`` for the ``index``-th row of a (shuffled) HF stream.

Errors:
    Corpus problems raise :class:`~stages_of_inference.errors.CorpusError`; bad
    numbers and a tokenizer without BOS or EOS raise
    :class:`~stages_of_inference.errors.ConfigError`; each message is one line
    naming the problem and the fix.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from stages_of_inference.corpora import EMBEDDED_ALIAS, EMBEDDED_CORPORA, Document, embedded_corpus, seeded_order
from stages_of_inference.errors import ConfigError, CorpusError
from stages_of_inference.tokens import MIN_SEQ_LEN, bos_token_id, separator_token_id

EMBEDDED_CORPUS = EMBEDDED_ALIAS
"""``"embedded"``: another name for the default embedded corpus, ``"prose"``."""

SUPPORTED_SUFFIXES = (".txt", ".md", ".jsonl", ".parquet", ".json")
"""File suffixes read as corpus files, directly or inside a folder."""

HF_SHUFFLE_BUFFER = 10_000
"""Shuffle buffer size, in documents, for a streamed Hugging Face dataset."""

HUB_TIMEOUT_S = 3.0
"""Seconds to wait for the Hugging Face Hub to answer before giving up on a name."""

_EMBEDDED_NAMES = f"an embedded corpus ({', '.join(map(repr, [EMBEDDED_ALIAS, *EMBEDDED_CORPORA]))})"

_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE_VALUES = frozenset({"1", "ON", "YES", "TRUE"})


@dataclass(frozen=True)
class CorpusRecord:
    """Which corpus, and which of its documents, a tensor of windows was cut from."""

    source: str
    """The source as passed (``"embedded"``, a path, a dataset name)."""
    corpus: str
    """The embedded corpus it names (``"embedded"`` resolves to ``"prose"``), else the source."""
    seed: int | None
    packages: dict[str, str] = field(default_factory=dict)
    """Installed versions of the packages that carry an embedded corpus's text."""
    document_ids: tuple[str, ...] = ()
    """The documents with at least one token in the windows, in stream order."""

    def to_json(self) -> dict[str, Any]:
        """The record as JSON values, with the document count and the SHA-256 of the ids (one per line)."""
        return {
            "source": self.source,
            "corpus": self.corpus,
            "seed": self.seed,
            "packages": dict(self.packages),
            "n_documents": len(self.document_ids),
            "documents_sha256": hashlib.sha256("\n".join(self.document_ids).encode("utf-8")).hexdigest(),
            "document_ids": list(self.document_ids),
        }


def load_corpus(
    source: str | os.PathLike[str],
    tokenizer_or_model: Any,
    n_tokens: int,
    seq_len: int = 256,
    seed: int | None = 0,
    *,
    text_field: str = "text",
    split: str = "train",
    max_context: int | None = None,
) -> Int[Tensor, "batch pos"]:
    """Tokenize a corpus into ``n_tokens // seq_len`` windows that start with BOS.

    See the module docstring for the BOS, separator, order and source rules.

    Args:
        source: ``"embedded"``, a local file or folder, or a Hugging Face dataset name.
        tokenizer_or_model: A Hugging Face tokenizer, or an object with a
            ``.tokenizer`` attribute such as a TransformerLens ``TransformerBridge``.
        n_tokens: Token budget; the output holds ``n_tokens // seq_len`` windows.
        seq_len: Tokens per window, BOS included; at least 3.
        seed: ``None`` for the source's stored order, an int for a deterministic shuffle.
        text_field: Field or column holding the text in jsonl, json, parquet and
            Hugging Face sources.
        split: Split of a Hugging Face dataset.
        max_context: Longest allowed ``seq_len``. The model's ``cfg.n_ctx``, when
            it has one, is a limit too; the tighter one applies.

    Returns:
        A ``torch.long`` tensor of shape ``[n_tokens // seq_len, seq_len]`` whose
        column 0 is the BOS token. :func:`load_corpus_with_record` returns it with
        the record of the documents it holds.

    Raises:
        ConfigError: ``n_tokens``, ``seq_len`` or the context limit are out of
            range, or the tokenizer has neither a BOS nor an EOS token.
        CorpusError: The source cannot be read or holds too little text.

    Example (builds a tiny tokenizer locally, no download):
        >>> from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        >>> from transformers import PreTrainedTokenizerFast
        >>> bpe = Tokenizer(models.BPE())
        >>> bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        >>> bpe.decoder = decoders.ByteLevel()
        >>> trainer = trainers.BpeTrainer(
        ...     vocab_size=300,
        ...     special_tokens=["<bos>", "<eos>"],
        ...     initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ...     show_progress=False,
        ... )
        >>> bpe.train_from_iterator(["A small sample of English text."], trainer=trainer)
        >>> tokenizer = PreTrainedTokenizerFast(
        ...     tokenizer_object=bpe, bos_token="<bos>", eos_token="<eos>"
        ... )
        >>> windows = load_corpus("python-docs", tokenizer, n_tokens=1024, seq_len=128)
        >>> windows.shape, windows.dtype
        (torch.Size([8, 128]), torch.int64)
        >>> bool((windows[:, 0] == tokenizer.bos_token_id).all())
        True
        >>> windows, record = load_corpus_with_record("python-docs", tokenizer, 1024, seq_len=128)
        >>> record.corpus, record.document_ids[0]
        ('python-docs', 'python-docs/exceptions')
    """
    return load_corpus_with_record(
        source,
        tokenizer_or_model,
        n_tokens,
        seq_len,
        seed,
        text_field=text_field,
        split=split,
        max_context=max_context,
    )[0]


def load_corpus_with_record(
    source: str | os.PathLike[str],
    tokenizer_or_model: Any,
    n_tokens: int,
    seq_len: int = 256,
    seed: int | None = 0,
    *,
    text_field: str = "text",
    split: str = "train",
    max_context: int | None = None,
) -> tuple[Int[Tensor, "batch pos"], CorpusRecord]:
    """:func:`load_corpus`'s windows, and the record of the corpus and documents they hold.

    Takes the arguments of :func:`load_corpus` and raises its errors.
    """
    limit = _context_limit(tokenizer_or_model, max_context)
    n_windows = _window_count(n_tokens, seq_len, limit)
    tokenizer = _tokenizer_of(tokenizer_or_model)
    bos = bos_token_id(tokenizer)
    documents = _documents(source, seed, text_field=text_field, split=split)
    token_lists = _tokenize(documents, tokenizer)
    chunks, n_stream, used = _cut_chunks(token_lists, separator_token_id(tokenizer), seq_len - 1, n_windows)
    _check_enough(source, n_stream, len(chunks), n_windows, seq_len, n_tokens)
    windows = torch.tensor([[bos, *chunk] for chunk in chunks], dtype=torch.long)
    return windows, _record(source, seed, used)


def _record(source: str | os.PathLike[str], seed: int | None, document_ids: list[str]) -> CorpusRecord:
    name = os.fspath(source)
    embedded = embedded_corpus(name) if isinstance(source, str) else None
    if embedded is None:
        return CorpusRecord(name, name, seed, document_ids=tuple(document_ids))
    return CorpusRecord(name, embedded.name, seed, embedded.versions(), tuple(document_ids))


def iter_documents(
    source: str | os.PathLike[str],
    seed: int | None = 0,
    *,
    text_field: str = "text",
    split: str = "train",
) -> Iterator[str]:
    """Return an iterator over the documents of a source, in stored or seeded order.

    Args:
        source: An embedded corpus name, a local file or folder, or a Hugging Face dataset name.
        seed: ``None`` for the stored order, an int for a deterministic shuffle.
        text_field: Field or column holding the text.
        split: Split of a Hugging Face dataset.

    Returns:
        An iterator over document texts. Files are opened lazily, so read errors
        surface while iterating.

    Raises:
        CorpusError: The source is a missing path or an unreachable dataset name,
            or an embedded corpus whose package is not installed.
    """
    return (document.text for document in _documents(source, seed, text_field=text_field, split=split))


def _documents(source: str | os.PathLike[str], seed: int | None, *, text_field: str, split: str) -> Iterator[Document]:
    """The documents of a source, with their ids; errors about the source itself are raised at once."""
    embedded = embedded_corpus(source) if isinstance(source, str) else None
    if embedded is not None:
        return iter(embedded.documents(seed))
    path = Path(source).expanduser()
    if path.exists():
        documents = _local_documents(path, text_field)  # lazy in stored order: read only as far as needed
        return documents if seed is None else iter(seeded_order(documents, seed))
    if _looks_like_path(source):
        raise CorpusError(
            f"corpus path {os.fspath(source)!r} does not exist; pass an existing "
            f"{'/'.join(SUPPORTED_SUFFIXES)} file or folder, or {_EMBEDDED_NAMES}"
        )
    return _hf_documents(str(source), split, text_field, seed)


def _tokenizer_of(tokenizer_or_model: Any) -> Any:
    tokenizer = getattr(tokenizer_or_model, "tokenizer", tokenizer_or_model)
    if tokenizer is None:
        raise ConfigError(
            f"{type(tokenizer_or_model).__name__} has no tokenizer; load the model with one or pass a tokenizer"
        )
    return tokenizer


def _context_limit(tokenizer_or_model: Any, max_context: int | None) -> int | None:
    """Return the tighter of ``max_context`` and the model's ``cfg.n_ctx``, if any."""
    n_ctx = getattr(getattr(tokenizer_or_model, "cfg", None), "n_ctx", None)
    limits = [limit for limit in (max_context, n_ctx) if limit is not None]
    return min(limits, default=None)


def _window_count(n_tokens: int, seq_len: int, limit: int | None) -> int:
    if n_tokens <= 0:
        raise ConfigError(f"n_tokens={n_tokens} must be positive; pass n_tokens >= seq_len")
    if seq_len < MIN_SEQ_LEN:
        raise ConfigError(
            f"seq_len={seq_len} leaves no room for BOS plus two text tokens; pass seq_len >= {MIN_SEQ_LEN}"
        )
    if limit is not None and seq_len > limit:
        raise ConfigError(f"seq_len={seq_len} exceeds the model's context of {limit} tokens; pass seq_len <= {limit}")
    if n_tokens < seq_len:
        raise ConfigError(
            f"n_tokens={n_tokens} is below seq_len={seq_len}, so no window fits; raise n_tokens or lower seq_len"
        )
    return n_tokens // seq_len


def _tokenize(documents: Iterable[Document], tokenizer: Any) -> Iterator[tuple[str, list[int]]]:
    for document in documents:
        ids = tokenizer(document.text, add_special_tokens=False, verbose=False)["input_ids"]
        if ids:
            yield document.id, list(ids)


def _cut_chunks(
    token_lists: Iterable[tuple[str, list[int]]], separator: int, chunk_len: int, n_chunks: int
) -> tuple[list[list[int]], int, list[str]]:
    """Join token lists with ``separator`` and cut ``n_chunks`` chunks of ``chunk_len``.

    Returns the chunks (fewer if the lists run out), the number of stream tokens
    read, separators included, and the ids of the documents with a token in a chunk.
    """
    chunks: list[list[int]] = []
    buffer: list[int] = []
    n_stream = 0
    starts: list[tuple[str, int]] = []
    for document_id, ids in token_lists:
        if n_stream:
            buffer.append(separator)
        starts.append((document_id, n_stream + (1 if n_stream else 0)))
        buffer.extend(ids)
        n_stream += len(ids) + (1 if n_stream else 0)
        n_full = min(len(buffer) // chunk_len, n_chunks - len(chunks))
        chunks.extend(buffer[k * chunk_len : (k + 1) * chunk_len] for k in range(n_full))
        del buffer[: n_full * chunk_len]
        if len(chunks) == n_chunks:
            break
    n_used = len(chunks) * chunk_len
    return chunks, n_stream, [document_id for document_id, start in starts if start < n_used]


def _check_enough(
    source: str | os.PathLike[str],
    n_stream: int,
    n_found: int,
    n_windows: int,
    seq_len: int,
    n_tokens: int,
) -> None:
    name = os.fspath(source)
    if n_stream == 0:
        raise CorpusError(f"corpus {name!r} holds no text; add documents or check text_field")
    if n_found < n_windows:
        raise CorpusError(
            f"corpus {name!r} holds {n_stream} tokens = {n_found} windows of {seq_len}; "
            f"asked for {n_windows} windows (n_tokens={n_tokens}); "
            "lower n_tokens or add text"
        )


def _looks_like_path(source: str | os.PathLike[str]) -> bool:
    if not isinstance(source, str):
        return True
    return (
        os.path.isabs(source)
        or source.startswith((".", "~"))
        or "\\" in source
        or source.count("/") > 1
        or Path(source).suffix.lower() in SUPPORTED_SUFFIXES
    )


def _local_documents(path: Path, text_field: str) -> Iterator[Document]:
    files = _corpus_files(path) if path.is_dir() else [path]
    for file in files:
        yield from _file_documents(file, text_field)


def _corpus_files(folder: Path) -> list[Path]:
    files = sorted(file for file in folder.rglob("*") if file.is_file() and file.suffix.lower() in SUPPORTED_SUFFIXES)
    if not files:
        raise CorpusError(
            f"folder {str(folder)!r} holds no {'/'.join(SUPPORTED_SUFFIXES)} file; "
            "add corpus files or pass another folder"
        )
    return files


def _file_documents(file: Path, text_field: str) -> Iterator[Document]:
    suffix = file.suffix.lower()
    if suffix in (".txt", ".md"):
        return iter([Document(str(file), _decode(file, file.read_bytes()))])
    if suffix == ".jsonl":
        return _jsonl_documents(file, text_field)
    if suffix == ".json":
        return _json_documents(file, text_field)
    if suffix == ".parquet":
        return _parquet_documents(file, text_field)
    raise CorpusError(
        f"corpus file {str(file)!r} has unsupported suffix {file.suffix!r}; "
        f"convert it to one of {', '.join(SUPPORTED_SUFFIXES)}"
    )


def _decode(file: Path, data: bytes, offset: int = 0) -> str:
    """Decode UTF-8 bytes found at byte ``offset`` of ``file``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorpusError(
            f"corpus file {str(file)!r} is not valid UTF-8 at byte offset {offset + error.start}; re-save it as UTF-8"
        ) from error


def _parse_json(file: Path, text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CorpusError(
            f"corpus file {str(file)!r} {where}: malformed JSON ({error.msg}); fix or remove it"
        ) from error


def _jsonl_documents(file: Path, text_field: str) -> Iterator[Document]:
    offset = 0
    with file.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            line = _decode(file, raw, offset)
            offset += len(raw)
            if line.strip():
                where = f"line {number}"
                record = _parse_json(file, line, where)
                yield Document(f"{file}:{number}", _text_of(record, text_field, f"corpus file {str(file)!r} {where}"))


def _json_documents(file: Path, text_field: str) -> Iterator[Document]:
    content = _parse_json(file, _decode(file, file.read_bytes()), "(whole file)")
    if not isinstance(content, list):
        raise CorpusError(
            f"corpus file {str(file)!r} holds a JSON {type(content).__name__}; "
            f"make it a list of strings or of objects with field {text_field!r}"
        )
    for index, item in enumerate(content):
        where = f"corpus file {str(file)!r} item {index}"
        yield Document(f"{file}[{index}]", item if isinstance(item, str) else _text_of(item, text_field, where))


def _parquet_documents(file: Path, text_field: str) -> Iterator[Document]:
    import pyarrow
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(file)
    except pyarrow.ArrowException as error:
        raise CorpusError(
            f"corpus file {str(file)!r} is not a readable parquet file "
            f"({_first_line(error)}); "
            "rewrite it with pyarrow or pandas"
        ) from error
    columns = table.schema_arrow.names
    if text_field not in columns:
        raise CorpusError(
            f"corpus file {str(file)!r} has no column {text_field!r} "
            f"(columns present: {', '.join(columns)}); pass text_field=<one of them>"
        )
    row = 0
    for batch in table.iter_batches(columns=[text_field]):
        for value in batch.column(0).to_pylist():
            yield Document(f"{file}[{row}]", _checked_text(value, text_field, f"corpus file {str(file)!r} row {row}"))
            row += 1


def _text_of(record: Any, text_field: str, where: str) -> str:
    if not isinstance(record, dict):
        raise CorpusError(
            f"{where} is a JSON {type(record).__name__}, not an object; give each record a {text_field!r} field"
        )
    if text_field not in record:
        raise CorpusError(
            f"{where} has no field {text_field!r} (fields present: "
            f"{', '.join(map(str, record)) or 'none'}); pass text_field=<one of them>"
        )
    return _checked_text(record[text_field], text_field, where)


def _checked_text(value: Any, text_field: str, where: str) -> str:
    if not isinstance(value, str):
        raise CorpusError(
            f"{where}: field {text_field!r} is {type(value).__name__}, not a string; "
            "store the text as a string or pick another text_field"
        )
    return value


def _hf_documents(name: str, split: str, text_field: str, seed: int | None) -> Iterator[Document]:
    dataset = _open_hf_dataset(name, split)
    if seed is not None:
        dataset = dataset.shuffle(seed=seed, buffer_size=HF_SHUFFLE_BUFFER)
    return (
        Document(f"{name}[{index}]", _text_of(row, text_field, f"HF dataset {name!r} row {index}"))
        for index, row in enumerate(dataset)
    )


def _open_hf_dataset(name: str, split: str) -> Any:
    reason = _hub_unreachable_reason()
    if reason is not None:
        raise CorpusError(_not_a_corpus_message(name, reason))
    import datasets

    try:
        return datasets.load_dataset(name, split=split, streaming=True)
    # datasets raises many unrelated types here (FileNotFoundError, ConnectionError,
    # ValueError for a bad split, ...); each means the name cannot be streamed.
    except Exception as error:
        raise CorpusError(_not_a_corpus_message(name, f"{type(error).__name__}: {_first_line(error)}")) from error


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [""])[0]


def _not_a_corpus_message(name: str, reason: str) -> str:
    return (
        f"corpus {name!r} is neither a local path nor a reachable HF dataset ({reason}); "
        f"pass a local file or folder, or {_EMBEDDED_NAMES}, or go online"
    )


def _hub_unreachable_reason() -> str | None:
    """Say why the Hugging Face Hub cannot be used now, or return None if it answers."""
    for variable in _OFFLINE_VARIABLES:
        if os.environ.get(variable, "").strip().upper() in _TRUE_VALUES:
            return f"{variable} is set"
    from huggingface_hub import constants

    request = urllib.request.Request(constants.ENDPOINT, method="HEAD")
    try:
        urllib.request.urlopen(request, timeout=HUB_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return None
    except OSError as error:
        return f"{constants.ENDPOINT} did not answer within {HUB_TIMEOUT_S:g} s: {_first_line(error)}"
    return None
