"""stages-of-inference: delete or swap transformer layers, measure what survives, find the stages.

A toolkit on TransformerLens 4 reproducing and extending Lad, Lee, Gurnee and
Tegmark, "The Remarkable Robustness of LLMs: Stages of Inference?" (arXiv 2406.19384).

Example:
    >>> import stages_of_inference as soi
    >>> model = soi.load_model("smollm2-135m")  # doctest: +SKIP
    >>> tokens = soi.load_corpus("embedded", model, n_tokens=4096, seq_len=256, seed=0)  # doctest: +SKIP
    >>> table = soi.robustness_sweep(model, tokens)  # doctest: +SKIP
    >>> soi.plots.plot_robustness(table)  # doctest: +SKIP
"""

from stages_of_inference import plots
from stages_of_inference.analyses.attention import previous_token_attention
from stages_of_inference.analyses.cka import MinibatchCKA, cka_matrix, linear_cka
from stages_of_inference.analyses.logit_lens import logit_lens, logit_lens_top_tokens
from stages_of_inference.analyses.neurons import (
    class_neurons,
    classify_neurons,
    neuron_counts,
    neuron_vocab_moments,
)
from stages_of_inference.analyses.norms import component_norms
from stages_of_inference.analyses.subjoiner import subjoiner_heads, subjoiner_pattern
from stages_of_inference.corpus import load_corpus
from stages_of_inference.errors import (
    ConfigError,
    CorpusError,
    ModelLoadError,
    NumericalError,
    ResultsError,
    StagesError,
)
from stages_of_inference.interventions import (
    Intervention,
    component_deletion_hooks,
    default_interventions,
    delete_attention,
    delete_layers,
    delete_mlp,
    layer_deletion_hooks,
    layer_order,
    swap_layers,
    zero_ablation_hook,
)
from stages_of_inference.layers import relative_depth
from stages_of_inference.models import available_models, load_model
from stages_of_inference.scoring.metrics import token_metrics
from stages_of_inference.stages import detect_stages
from stages_of_inference.sweep import robustness_sweep

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "CorpusError",
    "Intervention",
    "MinibatchCKA",
    "ModelLoadError",
    "NumericalError",
    "ResultsError",
    "StagesError",
    "available_models",
    "cka_matrix",
    "class_neurons",
    "classify_neurons",
    "component_deletion_hooks",
    "component_norms",
    "default_interventions",
    "delete_attention",
    "delete_layers",
    "delete_mlp",
    "detect_stages",
    "layer_deletion_hooks",
    "layer_order",
    "linear_cka",
    "load_corpus",
    "load_model",
    "logit_lens",
    "logit_lens_top_tokens",
    "neuron_counts",
    "neuron_vocab_moments",
    "plots",
    "previous_token_attention",
    "relative_depth",
    "robustness_sweep",
    "subjoiner_heads",
    "subjoiner_pattern",
    "swap_layers",
    "token_metrics",
    "zero_ablation_hook",
]
