"""Bad inputs that need the real embedded model: its true context length.

Everything else about bad inputs runs on tiny local models (tests/unit/test_bad_inputs.py).
"""

from __future__ import annotations

import pytest
from transformer_lens.model_bridge import TransformerBridge

from stages_of_inference.corpus import load_corpus
from stages_of_inference.errors import ConfigError

pytestmark = pytest.mark.integration


def test_seq_len_beyond_smollm2_context_is_refused_before_tokenizing(smollm2: TransformerBridge) -> None:
    n_ctx = int(smollm2.cfg.n_ctx)
    assert n_ctx >= 2048  # the GGUF's context length reached the bridge
    with pytest.raises(ConfigError) as caught:
        load_corpus("python-docs", smollm2, n_tokens=2 * (n_ctx + 1), seq_len=n_ctx + 1)
    message = str(caught.value)
    assert f"seq_len={n_ctx + 1}" in message and f"context of {n_ctx} tokens" in message
    assert f"pass seq_len <= {n_ctx}" in message
