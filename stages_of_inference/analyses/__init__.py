"""The stage analyses of the paper, each a function from a model (and tokens) to a tidy table.

``logit_lens``, ``attention`` (to the previous k tokens), ``neurons`` (prediction and
suppression), ``cka`` (layer to layer), ``norms`` (what each block writes) and
``subjoiner`` (heads that glue sub-tokens); and, read through the logit lens,
``commit_depth`` (where each prediction settles) and ``self_repair`` (how later layers
undo a deletion). Figures of these tables live in :mod:`stages_of_inference.plots`.
"""
