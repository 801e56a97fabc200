"""Oracle test of the commit depth: the bridge's per-token commit points against HF hidden states decoded in numpy.

An untouched HF copy of the tiny Llama (same seed) gives its hidden states; each point
is decoded by hand (the final RMSNorm written out, then ``@ W_U``, in float64) and the
commit rule is applied with plain Python loops. The bridge decodes in float32, so a
top-1 can legitimately differ where the two best logits are within twice the
rounding bound of :func:`~tests.oracle.test_logit_lens_oracle.logit_error_bound`;
tokens with such a near tie at any point are left out, every other token must commit
at exactly the same point.
"""

from __future__ import annotations

import numpy as np
import pytest

from stages_of_inference.analyses.commit_depth import commit_depth
from stages_of_inference.models import bridge_from_hf
from tests.oracle.test_logit_lens_oracle import final_norm, hf_states, logit_error_bound, plain_norm, rows, unembed
from tests.tiny_models import tiny_hf_model

pytestmark = pytest.mark.oracle


def near_tie(logits: np.ndarray, delta: np.ndarray) -> np.ndarray:
    top2 = np.sort(logits, axis=-1)[:, -2:]
    return top2[:, 1] - top2[:, 0] <= 2 * delta


def test_commit_points_equal_hand_decoding_of_hf_hidden_states(tiny_tokenizer, tiny_tokens) -> None:
    reference = tiny_hf_model("llama", vocab_size=len(tiny_tokenizer))
    bridge = bridge_from_hf(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer)
    per_token = commit_depth(bridge, tiny_tokens, batch_size=2, progress=False).per_token

    states, final_logits = hf_states(reference, "llama", tiny_tokens)
    norm = final_norm(reference, "llama")
    head = reference.get_output_embeddings().weight.detach().double().numpy()
    n_layers = len(states) - 1
    final = rows(final_logits)
    final_top1 = final.argmax(-1)
    ambiguous = near_tie(final, logit_error_bound(plain_norm(rows(states[-1]), norm, "llama"), head, n_layers))
    agrees = []
    for hidden in states[:-1]:  # the last point is the output itself
        normed = plain_norm(rows(hidden), norm, "llama")
        logits = unembed(reference, normed)
        agrees.append(logits.argmax(-1) == final_top1)
        ambiguous |= near_tie(logits, logit_error_bound(normed, head, n_layers))
    agrees.append(np.ones_like(final_top1, dtype=bool))
    expected = [
        next(point for point in range(n_layers + 1) if all(agrees[p][token] for p in range(point, n_layers + 1)))
        for token in range(len(final_top1))
    ]
    clear = ~ambiguous
    assert clear.mean() > 0.9  # the comparison covers nearly every token
    np.testing.assert_array_equal(per_token.commit_point.to_numpy()[clear], np.array(expected)[clear])
    np.testing.assert_array_equal(per_token.prediction.to_numpy()[clear], final_top1[clear])
    assert len(set(expected)) > 1  # the tiny model's tokens do not all commit at one point
