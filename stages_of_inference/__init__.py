"""stages-of-inference: delete or swap transformer layers, measure what survives, find the stages.

A toolkit on TransformerLens 4 reproducing and extending Lad, Lee, Gurnee and
Tegmark, "The Remarkable Robustness of LLMs: Stages of Inference?" (arXiv 2406.19384).

The public API comes in tiers. ``soi.*`` holds the verbs of a notebook session: load a
model and a corpus, intervene, sweep, run an analysis, place the stages, plan which layers
to prune (:func:`~stages_of_inference.pruning.prune_plan`). Figures live
under :mod:`soi.plots <stages_of_inference.plots>`; the building blocks for composing
your own analyses under their subpackages: hook functions and layer layouts in
:mod:`soi.interventions <stages_of_inference.interventions>`, per-token metrics and
decoding in :mod:`soi.scoring <stages_of_inference.scoring>`, the estimators behind each
analysis (e.g. ``MinibatchCKA``) in :mod:`soi.analyses <stages_of_inference.analyses>`.

Example:
    >>> import stages_of_inference as soi
    >>> model = soi.load_model("smollm2-135m")  # doctest: +SKIP
    >>> tokens = soi.load_corpus("embedded", model, n_tokens=4096, seq_len=256, seed=0)  # doctest: +SKIP
    >>> table = soi.robustness_sweep(model, tokens)  # doctest: +SKIP
    >>> soi.plots.plot_robustness(table)  # doctest: +SKIP
    >>> soi.verdict_table(soi.claim_verdicts("results"))  # the paper's claims, tested  # doctest: +SKIP
"""

from stages_of_inference import analyses, interventions, plots, pruning, scoring
from stages_of_inference.analyses.attention import previous_token_attention
from stages_of_inference.analyses.cka import cka_matrix
from stages_of_inference.analyses.commit_depth import commit_depth
from stages_of_inference.analyses.logit_lens import logit_lens, logit_lens_top_tokens
from stages_of_inference.analyses.neurons import (
    class_neurons,
    classify_neurons,
    neuron_counts,
    neuron_vocab_moments,
)
from stages_of_inference.analyses.norms import component_norms
from stages_of_inference.analyses.self_repair import repair_by_layer, self_repair
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
    delete_attention,
    delete_layers,
    delete_mlp,
    intervene,
    intervention_family,
    layer_order,
    swap_layers,
)
from stages_of_inference.models import LoadedModel, available_models, load_model
from stages_of_inference.pruning import PrunePlan, prune_plan
from stages_of_inference.report.verdicts import claim_verdicts
from stages_of_inference.stages import detect_stages
from stages_of_inference.sweep import robustness_sweep
from stages_of_inference.verdicts import verdict_table

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "CorpusError",
    "Intervention",
    "LoadedModel",
    "ModelLoadError",
    "NumericalError",
    "PrunePlan",
    "ResultsError",
    "StagesError",
    "analyses",
    "available_models",
    "cka_matrix",
    "claim_verdicts",
    "class_neurons",
    "classify_neurons",
    "commit_depth",
    "component_norms",
    "delete_attention",
    "delete_layers",
    "delete_mlp",
    "detect_stages",
    "intervene",
    "intervention_family",
    "interventions",
    "layer_order",
    "load_corpus",
    "load_model",
    "logit_lens",
    "logit_lens_top_tokens",
    "neuron_counts",
    "neuron_vocab_moments",
    "plots",
    "previous_token_attention",
    "prune_plan",
    "pruning",
    "repair_by_layer",
    "robustness_sweep",
    "scoring",
    "self_repair",
    "subjoiner_heads",
    "subjoiner_pattern",
    "swap_layers",
    "verdict_table",
]
