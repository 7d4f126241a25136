"""The C library's LLM helper (native_runtime/src/llm.cpp, tokenizer.cpp, sampler.cpp) against Python:
tokenizer ids equal the `tokenizers` package's on Python's own help text, seeded sampling equals
edgekit.generate.sample with NumPy's generator, and ek_llm_generate equals LLMSession.generate."""

from __future__ import annotations

import ctypes
import json
import shutil

import numpy as np
import pytest

from conftest import needs_export

native = pytest.importorskip("edgekit.runtime.native")


class _Sampling(ctypes.Structure):
    _fields_ = [("temperature", ctypes.c_float), ("top_k", ctypes.c_int), ("seed", ctypes.c_uint64),
                ("max_new_tokens", ctypes.c_int)]


class _Stats(ctypes.Structure):
    _fields_ = [("ttft_ms", ctypes.c_double), ("prefill_tok_s", ctypes.c_double), ("decode_tok_s", ctypes.c_double),
                ("prompt_tokens", ctypes.c_int), ("new_tokens", ctypes.c_int)]


@pytest.fixture(scope="module")
def lib():
    if not native.library_path().is_file():
        pytest.skip(f"{native.library_path()} is not built (make native)")
    so = native.lib()
    so.ek_internal_encode.restype = ctypes.POINTER(ctypes.c_int64)
    so.ek_internal_encode.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)]
    so.ek_internal_decode.restype = ctypes.c_void_p
    so.ek_internal_decode.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64), ctypes.c_size_t,
                                      ctypes.POINTER(ctypes.c_size_t)]
    so.ek_internal_error.restype = ctypes.c_char_p
    so.ek_internal_random_raw.argtypes = [ctypes.c_uint64, ctypes.c_size_t, ctypes.POINTER(ctypes.c_uint64)]
    so.ek_internal_sample.argtypes = [ctypes.POINTER(ctypes.c_float), ctypes.c_size_t, ctypes.c_float, ctypes.c_int,
                                      ctypes.c_uint64, ctypes.c_int, ctypes.POINTER(ctypes.c_int64)]
    so.ek_free.argtypes = [ctypes.c_void_p]
    so.ek_llm_open.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    so.ek_llm_generate.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(_Sampling),
                                   ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(_Stats)]
    so.ek_llm_close.argtypes = [ctypes.c_void_p]
    so.ek_llm_close.restype = None
    return so


def _encode(lib, path, text: str) -> list[int]:
    n = ctypes.c_size_t()
    p = lib.ek_internal_encode(str(path).encode(), text.encode(), ctypes.byref(n))
    assert p, lib.ek_internal_error().decode()
    ids = p[:n.value]
    lib.ek_free(ctypes.cast(p, ctypes.c_void_p))
    return ids


def _decode(lib, path, ids: list[int]) -> str:
    arr, n = (ctypes.c_int64 * len(ids))(*ids), ctypes.c_size_t()
    p = lib.ek_internal_decode(str(path).encode(), arr, len(ids), ctypes.byref(n))
    assert p, lib.ek_internal_error().decode()
    text = ctypes.string_at(p, n.value).decode()  # decode() already replaced invalid UTF-8 with U+FFFD
    lib.ek_free(p)
    return text


@pytest.fixture(scope="module")
def pydoc_tokenizer(tmp_path_factory):
    """The tokenizer `edgekit train llama_pydoc` trains (byte-level BPE, 1024 tokens), saved as JSON."""
    from edgekit.model_zoo.text import train_tokenizer

    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok = train_tokenizer(1024)
    tok.save(str(path))
    return path, tok


def test_tokenizer_ids_equal_tokenizers_on_pydoc_text(lib, pydoc_tokenizer):
    from edgekit.model_zoo.text import pydoc_text

    path, tok = pydoc_tokenizer
    text = pydoc_text("all")  # 465 KB of Python's help: curly quotes, dashes, code, tables
    ids = _encode(lib, path, text)
    want = tok.encode(text).ids
    assert len(want) > 100_000 and ids == want
    assert _decode(lib, path, ids) == tok.decode(want) == text


@pytest.mark.parametrize("text", [
    "naïve café 東京 ١٢٣ Ⅻ ½ x²  \t\n  end<|endoftext|>It's we'll 'RE  ", "   a\n\n\nb  ", "", " ",
    "<|endoftext|><|endoftext|>x", "ü\u00a0\u2003x\u3000y\u2028", "😀 emoji ζ 3.14e-5 ''s'",
    "def f(x):\n    return x**2\n"])
def test_tokenizer_edge_cases_equal_tokenizers(lib, pydoc_tokenizer, text):
    path, tok = pydoc_tokenizer
    assert _encode(lib, path, text) == tok.encode(text).ids


def test_decode_of_any_ids_equals_tokenizers(lib, pydoc_tokenizer):
    """Random ids make invalid UTF-8 (split multi-byte chars) and NUL bytes: replaced the same way."""
    path, tok = pydoc_tokenizer
    ids = np.random.default_rng(1).integers(0, 1024, 5000).tolist()
    assert _decode(lib, path, ids) == tok.decode(ids)


def test_tokenizer_refuses_other_kinds(lib, pydoc_tokenizer, tmp_path):
    spec = json.loads(pydoc_tokenizer[0].read_text())
    spec["pre_tokenizer"] = {"type": "Whitespace"}
    (tmp_path / "t.json").write_text(json.dumps(spec))
    n = ctypes.c_size_t()
    assert not lib.ek_internal_encode(str(tmp_path / "t.json").encode(), b"x", ctypes.byref(n))
    assert "pre_tokenizer Whitespace" in lib.ek_internal_error().decode()
    assert not lib.ek_internal_encode(str(tmp_path / "t.json").encode(), b"\xff", ctypes.byref(n))


def test_random_stream_equals_numpy_default_rng(lib):
    for seed in (0, 1, 42, 2**32 + 5, 2**64 - 1):
        out = (ctypes.c_uint64 * 8)()
        lib.ek_internal_random_raw(seed, 8, out)
        assert list(out) == np.random.default_rng(seed).bit_generator.random_raw(8).tolist()


@pytest.mark.parametrize("temperature,top_k", [(0.0, 40), (0.8, 40), (1.0, 0), (0.5, 5), (1.3, 1)])
def test_sampling_equals_edgekit_generate_sample(lib, temperature, top_k):
    from edgekit.generate import sample

    gen = np.random.default_rng(7)
    for seed in range(5):
        logits = (gen.standard_normal((48, 300)) * 3).astype(np.float32)
        logits[:, 10] = logits[:, 11]  # ties: argmax takes the first, top-k keeps both
        out = (ctypes.c_int64 * 48)()
        lib.ek_internal_sample(logits.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), 300, temperature, top_k, seed,
                               48, out)
        rng = np.random.default_rng(seed)
        assert list(out) == [sample(row, temperature, top_k, rng) for row in logits]


def _generate(lib, handle, prompt: str, temperature=0.0, top_k=0, seed=0, max_new=24):
    out, stats = ctypes.c_void_p(), _Stats()
    status = lib.ek_llm_generate(handle, prompt.encode(), ctypes.byref(_Sampling(temperature, top_k, seed, max_new)),
                                 ctypes.byref(out), ctypes.byref(stats))
    if status:
        return status, lib.ek_last_error().decode(), stats
    text = ctypes.string_at(out.value).decode()
    lib.ek_free(out)
    return status, text, stats


@pytest.fixture(scope="module")
def llm_handle(lib, tiny_llm_pte):
    h = ctypes.c_void_p()
    assert lib.ek_llm_open(str(tiny_llm_pte).encode(), None, ctypes.byref(h)) == 0, lib.ek_last_error()
    yield h
    lib.ek_llm_close(h)


@needs_export
def test_native_generation_equals_python(lib, tiny_llm_pte, llm_handle):
    """Greedy and seeded sampling give Python's tokens; the prompt spans two prefill chunks (prefill_len 8)."""
    from edgekit.generate import LLMSession

    session = LLMSession(tiny_llm_pte)
    prompt = "The for statement is used to iterate"
    assert len(session.tokenizer.encode(prompt).ids) > 8
    for temperature, top_k, seed in ((0.0, 0, 0), (0.8, 40, 3), (1.0, 0, 11)):
        r = session.generate(prompt, max_new_tokens=24, temperature=temperature, top_k=top_k, seed=seed)
        status, text, stats = _generate(lib, llm_handle, prompt, temperature, top_k, seed)
        assert status == 0 and text == r.text, (temperature, text, r.text)
        assert (stats.prompt_tokens, stats.new_tokens) == (r.prompt_tokens, len(r.new_tokens))
        assert stats.ttft_ms > 0 and stats.decode_tok_s > 0


@needs_export
def test_llm_errors_are_statuses(lib, tiny_llm_pte, llm_handle, tiny_artifacts, tmp_path):
    status, msg, _ = _generate(lib, llm_handle, "word " * 60, max_new=24)
    assert status == 1 and "exceeds the model's context of 64" in msg  # EK_ERR_ARGUMENT
    assert _generate(lib, llm_handle, "")[0] == 1
    out = ctypes.c_void_p()
    assert lib.ek_llm_generate(llm_handle, b"\xc3(", ctypes.byref(_Sampling(0, 0, 0, 4)), ctypes.byref(out), None) == 1
    assert "not valid UTF-8" in lib.ek_last_error().decode()
    h = ctypes.c_void_p()
    assert lib.ek_llm_open(str(tiny_artifacts["executorch"]).encode(), None, ctypes.byref(h)) == 3  # MANIFEST
    assert "not an LLM artifact" in lib.ek_last_error().decode() and not h.value
    bad = tmp_path / "bad"
    shutil.copytree(tiny_llm_pte, bad)
    (bad / "tokenizer.json").write_text("{}")
    assert lib.ek_llm_open(str(bad).encode(), None, ctypes.byref(h)) == 4  # CHECKSUM: tokenizer.json is listed


@pytest.mark.slow
def test_native_generation_with_an_explicit_cache_equals_python(lib, tiny_llm_artifacts):
    """The .tflite LLM takes and returns its KV cache on every call: the helper carries it between calls."""
    from edgekit.generate import LLMSession

    art = tiny_llm_artifacts["tflite"]
    h = ctypes.c_void_p()
    assert lib.ek_llm_open(str(art).encode(), None, ctypes.byref(h)) == 0, lib.ek_last_error()
    try:
        prompt = "The for statement is used to iterate"
        for temperature, top_k, seed in ((0.0, 0, 0), (0.8, 40, 3)):
            want = LLMSession(art).generate(prompt, max_new_tokens=24, temperature=temperature, top_k=top_k, seed=seed)
            status, text, _ = _generate(lib, h, prompt, temperature, top_k, seed)
            assert status == 0 and text == want.text
    finally:
        lib.ek_llm_close(h)
