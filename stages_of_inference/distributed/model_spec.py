"""How a worker process loads the same model as the driver: its name, weight processing and load options.

A bridge cannot be shipped to another process cheaply, but a model loaded by
:func:`~stages_of_inference.models.load_model` records what it was loaded from
(``model.soi_source``), so each worker loads it again. The worker then compares the
identity of what it loaded with the driver's (:meth:`ModelSpec.check`), so a worker
that found other weights (another cache, another machine) stops the run instead of
mixing numbers of two models.

Example:
    >>> spec = ModelSpec("smollm2-135m", True, "cpu", "float32", {"name": "smollm2-135m", "device": "cpu"})
    >>> spec.arguments()
    {'compatibility_mode': True, 'device': 'cpu', 'dtype': 'float32'}
    >>> spec.check({"name": "smollm2-135m", "device": "cuda:0"})  # another device: accepted
    >>> spec.check({"name": "gemma-3-270m", "device": "cpu"})
    Traceback (most recent call last):
    ...
    stages_of_inference.errors.ConfigError: a Ray worker loaded another model than the driver (name: 'smollm2-135m' on the driver, 'gemma-3-270m' on the worker); give every node the same model files and cache
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stages_of_inference.errors import ConfigError
from stages_of_inference.models.bridge import LoadedModel

RELOADABLE_KINDS = ("embedded", "gguf", "folder", "hub")
"""Sources a worker can load again by name (an in-memory bridge is ``"memory"``)."""
LOCAL_FIELDS = ("device",)
"""Identity fields a worker may set differently from the driver (its own GPU)."""


@dataclass(frozen=True)
class ModelSpec:
    """What a worker passes to :func:`~stages_of_inference.models.load_model`, and what it must get."""

    name: str
    """The name the driver's model was loaded by."""
    compatibility_mode: bool
    """The driver's weight processing."""
    device: str
    """The driver's device, unless ``load_options`` names another."""
    dtype: str
    """The driver's weight dtype (a worker in another dtype would not compute the same table)."""
    identity: dict[str, Any]
    """The driver's ``model.soi_source.identity()``."""
    load_options: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments of ``load_model`` (``trust_remote_code``, ``device``, ...)."""

    @classmethod
    def of(cls, model: LoadedModel, load_options: dict[str, Any] | None = None) -> ModelSpec:
        """The spec of a model loaded by ``load_model``.

        Raises:
            ConfigError: The model was built in memory (no name to load it by).
        """
        source = getattr(model, "soi_source", None)
        if source is None or source.kind not in RELOADABLE_KINDS:
            raise ConfigError(
                "Ray workers load the model again by its name: load it with soi.load_model "
                "(a model built in memory cannot be reloaded), or use backend='local'"
            )
        return cls(
            source.name,
            source.compatibility_mode,
            source.device,
            source.dtype,
            source.identity(),
            dict(load_options or {}),
        )

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``load_model`` besides the name."""
        return {
            "compatibility_mode": self.compatibility_mode,
            "device": self.device,
            "dtype": self.dtype,
            **self.load_options,
        }

    def load(self) -> LoadedModel:
        """Load the model in this process and check it is the driver's.

        Raises:
            ConfigError: What was loaded differs from the driver's model.
        """
        from stages_of_inference.models import load_model

        model = load_model(self.name, **self.arguments())
        self.check(model.soi_source.identity())
        return model

    def check(self, identity: dict[str, Any]) -> None:
        """Refuse a worker's model whose identity differs from the driver's (but for its device).

        Raises:
            ConfigError: A field other than the device differs.
        """
        differences = [
            f"{key}: {self.identity.get(key)!r} on the driver, {identity.get(key)!r} on the worker"
            for key in sorted(set(self.identity) | set(identity))
            if key not in LOCAL_FIELDS and self.identity.get(key) != identity.get(key)
        ]
        if differences:
            raise ConfigError(
                f"a Ray worker loaded another model than the driver ({'; '.join(differences)}); "
                "give every node the same model files and cache"
            )
