"""Running the robustness sweep on several processes or machines (Ray), as an optional extra.

:mod:`~stages_of_inference.distributed.model_spec` says how a worker loads the same
model again; :mod:`~stages_of_inference.distributed.ray_backend` runs the sweep's
batches on Ray actors. Nothing here imports Ray until the Ray backend is used, so the
default install and the local sweep never need it.
"""
