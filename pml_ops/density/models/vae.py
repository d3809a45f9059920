"""The VAE families (MLP VAE `vae` and convolutional CVAE `cvae`) as a `DensityModel`.

`VaeModel(name, family, architecture, training, seed, device, memory_budget_mib)` holds the
hyperparameters; `fit` builds the network from the architecture and trains it with `train_vae`
(checkpoint and resume unchanged); every scoring method runs in inference mode on `device`, in
batches sized so that one pass's activations stay within `memory_budget_mib` (pml_ops.density.
batching), whatever the architecture. `vae` and `cvae` are the two `Family` objects.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pml_ops.config import ConvVaeArchitecture, CvaeParams, MlpVaeArchitecture, TrainingParams, VaeParams
from pml_ops.core.errors import ArchitectureError
from pml_ops.density import artifact, figures
from pml_ops.density.data import DensitySplit, image_tensor, resolve_device
from pml_ops.density.family import DEFAULT_MEMORY_BUDGET_MIB, Family, ModelSettings, PreflightError
from pml_ops.density.interface import FigureInputs, FitCallbacks

# torch (~1.1 s at import) and the modules built on it (architectures, autoencoder, batching,
# training) are imported where they are used: the registry imports this module in every density
# stage and the report, and the compare stage and the PPCA and GMM evaluate stages never need torch.
if TYPE_CHECKING:
    import torch

    from pml_ops.density.autoencoder import VAE

Architecture = MlpVaeArchitecture | ConvVaeArchitecture
ARCHITECTURES: dict[str, type[Architecture]] = {"vae": MlpVaeArchitecture, "cvae": ConvVaeArchitecture}


OBSERVATIONS = {
    "bernoulli": "Bernoulli decoder with pixel values in [0, 1] as targets (continuous BCE; not a "
    "normalised density over [0, 1])",
    "continuous_bernoulli": "continuous Bernoulli decoder (a normalised density over [0, 1] per pixel)",
}


class VaeModel:
    objective = "ELBO"

    def __init__(
        self,
        name: str,
        family: str,
        architecture: Architecture,
        training: TrainingParams,
        seed: int,
        device: torch.device,
        memory_budget_mib: float = DEFAULT_MEMORY_BUDGET_MIB,
    ) -> None:
        self.name, self.family = name, family
        self.memory_budget_bytes = int(memory_budget_mib * 2**20)
        self.architecture, self.training, self.seed, self.device = architecture, training, seed, device
        self.latent_dim = architecture.latent_dim
        self.observation = OBSERVATIONS[architecture.decoder]
        self.normalised = architecture.decoder == "continuous_bernoulli"
        self.module_: VAE | None = None
        self.train_metrics_: dict[str, Any] = {}
        self.history_: list[dict[str, Any]] = []

    def build(self) -> VAE:
        """The untrained network, weights drawn from `seed` (raises ArchitectureError)."""
        from pml_ops.density.architectures import build_model  # deferred: torch, see the imports

        return build_model(self.architecture, self.seed)

    def fit(self, split: DensitySplit, callbacks: FitCallbacks) -> VaeModel:
        from pml_ops.density.training import train_vae  # deferred: torch, see the imports

        module = self.build()
        result = train_vae(
            module,
            image_tensor(split.x_train, self.device),
            image_tensor(split.x_val, self.device),
            self.training,
            seed=self.seed,
            checkpoint=callbacks.checkpoint,
            fingerprint=repr(self.architecture),
            on_epoch=callbacks.on_epoch,
            label=self.name,
            eval_batch=self._rows(module, encoder=True, decoder=True),
            dequantise=self.normalised,  # a density over [0, 1] fits dequantised images, not k/255
        )
        if callbacks.checkpoint is not None:  # only an interrupted run leaves one: never resume a
            callbacks.checkpoint.unlink()  # finished, older run
        self.module_ = result.model.to(self.device).eval()
        self.history_ = [asdict(stats) for stats in result.history]
        last = result.history[-1]
        self.train_metrics_ = {
            "train_elbo": last.train_elbo,
            "val_elbo": last.val_elbo,
            "epochs": len(self.history_),
            "resumed_from_epoch": result.resumed_from_epoch,
            "images_per_second": float(np.median([s.images_per_second for s in result.history])),
        }
        return self

    @property
    def module(self) -> VAE:
        if self.module_ is None:
            raise RuntimeError(f"{self.name}: not fitted; call fit() or load() first")
        return self.module_

    def run_params(self) -> dict[str, Any]:
        return {"device": str(self.device), "parameters": sum(p.numel() for p in self.module.parameters())}

    def hyperparameters(self) -> dict[str, Any]:
        return {"architecture": self.architecture.model_dump(), "training": self.training.model_dump()}

    def save(self, path: Path) -> None:
        artifact.save_torch(
            path, artifact.header(self.family, self.hyperparameters()), self.module.state_dict()
        )

    @classmethod
    def load(
        cls,
        path: Path,
        name: str,
        family: str,
        seed: int,
        device: torch.device,
        expected: dict[str, Any] | None = None,
        memory_budget_mib: float = DEFAULT_MEMORY_BUDGET_MIB,
    ) -> VaeModel:
        """The model saved at `path`, rebuilt from the architecture the file records; refused when
        `expected` hyperparameters are given and differ."""
        head, state = artifact.load_torch(path, name, family, expected)
        saved = head["hyperparameters"]
        architecture = ARCHITECTURES[family](**saved["architecture"])
        training = TrainingParams(**saved["training"])
        model = cls(name, family, architecture, training, seed, device, memory_budget_mib)
        module = model.build()
        module.load_state_dict(state)
        model.module_ = module.to(device).eval()
        return model

    def _rows(self, module: VAE, encoder: bool, decoder: bool, samples: int = 1) -> int:
        """Images per pass within the memory budget: the encoder once per image, the decoder
        `samples` times."""
        # deferred: torch, see the imports
        from pml_ops.density.batching import decoder_bytes_per_sample, encoder_bytes_per_image, rows_within

        per_image = (encoder_bytes_per_image(module) if encoder else 0) + (
            samples * decoder_bytes_per_sample(module) if decoder else 0
        )
        return rows_within(self.memory_budget_bytes, per_image)

    def _batches(self, x: np.ndarray, batch: int) -> Iterator[torch.Tensor]:
        import torch  # deferred: see the imports

        for start in range(0, len(x), batch):
            chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + batch], dtype=np.float32))
            yield chunk.to(self.device).reshape(-1, 1, 28, 28)

    def _generator(self, seed: int) -> torch.Generator:
        import torch  # deferred: see the imports

        return torch.Generator(device=self.device).manual_seed(seed)

    def log_density(self, x: np.ndarray, seed: int = 0) -> np.ndarray:
        """Single-sample ELBO per image (a stochastic lower bound on log p(x))."""
        import torch  # deferred: see the imports

        generator = self._generator(seed)
        batch = self._rows(self.module, encoder=True, decoder=True)
        with torch.inference_mode():
            return np.concatenate(
                [self.module.elbo(b, generator).cpu().numpy() for b in self._batches(x, batch)]
            )

    def iwae(self, x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
        """Importance-weighted bound with K = k per image (see `iwae_with_variance`)."""
        return self.iwae_with_variance(x, k, seed)[0]

    def iwae_with_variance(self, x: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The IWAE bound per image and its Monte Carlo variance (delta method, `iwae_mc_variance`).
        The encoder runs once per image and the K samples of as many images as fit the memory
        budget go through the decoder in one pass; when K samples of one image do not fit, they
        are split over several passes."""
        import torch  # deferred: see the imports

        from pml_ops.density.autoencoder import iwae_mc_variance  # deferred: torch, as above
        from pml_ops.density.batching import decoder_bytes_per_sample, rows_within  # as above

        generator = self._generator(seed)
        images = self._rows(self.module, encoder=True, decoder=True, samples=k)
        samples = rows_within(self.memory_budget_bytes, decoder_bytes_per_sample(self.module))
        bounds, variances = [], []
        with torch.inference_mode():
            for b in self._batches(x, images):
                log_w = self.module.log_weights(b, k, generator, samples_per_pass=samples)
                bounds.append((torch.logsumexp(log_w, 0) - math.log(k)).cpu().numpy())
                variances.append(iwae_mc_variance(log_w).cpu().numpy())
        return np.concatenate(bounds), np.concatenate(variances)

    def encode(self, x: np.ndarray) -> np.ndarray:
        import torch  # deferred: see the imports

        batch = self._rows(self.module, encoder=True, decoder=False)
        with torch.inference_mode():
            return np.concatenate(
                [self.module.posterior(b)[0].cpu().numpy() for b in self._batches(x, batch)]
            )

    def decode(self, z: np.ndarray) -> np.ndarray:
        import torch  # deferred: see the imports

        batch = self._rows(self.module, encoder=False, decoder=True)
        latent = np.asarray(z, dtype=np.float32)
        out = []
        with torch.inference_mode():
            for start in range(0, len(latent), batch):
                chunk = torch.from_numpy(latent[start : start + batch]).to(self.device)
                out.append(self.module.decode(chunk).reshape(len(chunk), -1).cpu().numpy())
        return np.concatenate(out)

    def reconstruct(self, x: np.ndarray, sample: bool, seed: int) -> np.ndarray:
        """Decoder mean at the posterior mean, or at one posterior sample."""
        import torch  # deferred: see the imports

        generator = self._generator(seed)
        batch = self._rows(self.module, encoder=True, decoder=True)
        out = []
        with torch.inference_mode():
            for b in self._batches(x, batch):
                mean, logvar = self.module.posterior(b)
                if sample:
                    eps = torch.randn(mean.shape, generator=generator, device=self.device)
                    mean = mean + torch.exp(0.5 * logvar) * eps
                out.append(self.module.decode(mean).reshape(len(b), -1).cpu().numpy())
        return np.concatenate(out)

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Decoder means at prior samples (the usual way to show VAE samples)."""
        z = np.random.default_rng(seed).standard_normal((n, self.latent_dim))
        return self.decode(z)

    def figures(self, inputs: FigureInputs) -> list[Path]:
        return figures.latent_figures(self, inputs)


NOTE = (
    "VAE/CVAE: the single-sample ELBO, a lower bound on log p(x) (the study's unit and comparison). "
    "With the Bernoulli decoder not a normalised density, so comparable only among the Bernoulli "
    "models, and no bits/dim. With the continuous-Bernoulli decoder it bounds a normalised density "
    "over [0, 1]^784, trained on dequantised images (fresh noise each batch), but densities at the "
    "256 grey levels k/255 do not rank models: its bits/dim do, from the IWAE (an upper bound)"
)


def torch_device(settings: ModelSettings) -> torch.device:
    """Where the model runs: `density.device` resolved, torch's CPU threads set."""
    return resolve_device(settings.device, settings.cpu_threads)


def check_network(family: str, section: VaeParams | CvaeParams, settings: ModelSettings) -> None:
    """Build the network on the CPU and pass one blank image through it (no data, no weights
    saved); raise PreflightError naming the layer that breaks."""
    import torch  # deferred: ~1.1 s at import; the compare and PPCA/GMM evaluate stages never need it

    model = VaeModel(settings.name, family, section.architecture, section.training, 0, torch.device("cpu"))
    try:
        module = model.build()
        with torch.inference_mode():
            mean, _ = module.posterior(torch.zeros(1, 1, 28, 28))
            out = module.decode(mean)
    except ArchitectureError as error:  # its message starts with the default section's key
        raise PreflightError("architecture", str(error).removeprefix("cvae.architecture ")) from None
    except RuntimeError as error:
        raise PreflightError("architecture", f"the network cannot be built ({error})") from None
    if tuple(out.shape) != (1, 1, 28, 28):
        raise PreflightError("architecture", f"the decoder returns {tuple(out.shape)[1:]}, not (1, 28, 28)")


def _family(name: str, section: type[VaeParams] | type[CvaeParams]) -> Family:
    def create(section: VaeParams | CvaeParams, settings: ModelSettings) -> VaeModel:
        arch, training, budget = section.architecture, section.training, settings.memory_budget_mib
        return VaeModel(settings.name, name, arch, training, settings.seed, torch_device(settings), budget)

    def load(path: Path, settings: ModelSettings, expected: dict[str, Any] | None) -> VaeModel:
        device, budget = torch_device(settings), settings.memory_budget_mib
        return VaeModel.load(path, settings.name, name, settings.seed, device, expected, budget)

    return Family(
        name=name,
        section=section,
        suffix=".pt",
        create=create,
        load=load,
        note=NOTE,
        preflight=functools.partial(check_network, name),
        tuned=True,
        by_epoch=True,
    )


vae = _family("vae", VaeParams)
cvae = _family("cvae", CvaeParams)
