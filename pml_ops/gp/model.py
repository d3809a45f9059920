"""The GP model: a kernel object (`pml_ops.gp.kernels`), the exact log marginal likelihood and
the NUTS log density over the unconstrained (log) hyperparameters.

With log-normal priors, the prior density of ``u = log(theta)`` *including the Jacobian of
exp* is exactly Normal(loc, scale), so `log_joint_and_grad` is minus the potential Pyro derives
for the plain `pyro.contrib.gp` model. The tests check it against that model and against the same
density in batched torch (tests/helpers/gp_reference.py, which also drives Pyro's NUTS in
benchmarks/gp_nuts.py).

Two ways to the NUTS target's value and gradient: for any kernel, torch autograd through the
kernel's one definition (`autograd_log_joint_and_grad`); for a lone RBF kernel (the study's),
the hand-written numpy path (`log_joint_and_grad`), numpy and LAPACK only and ~40 times cheaper
per evaluation (benchmarks/results/gp_kernels.json): the study's draws stay bit for bit what
they were. Both agree to rounding (tested). Torch is imported by the functions that use it, so
chain worker processes of the RBF path start without it.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy.linalg import lapack

from pml_ops.gp.kernels import RBF, Kernel

if TYPE_CHECKING:
    import torch

HYPERPARAMETERS = RBF.kinds  # the study's RBF: the hand-written fast path
_LOG_2PI = math.log(2 * math.pi)
_MAX_ABS_LOG = 350.0  # autograd path: |log hyperparameter| beyond this over/underflows exp and squares


@dataclass(frozen=True)
class LogNormalPrior:
    loc: float
    scale: float


@dataclass(frozen=True)
class GPModel:
    """Training data, fixed noise variance, the kernel and one prior per kind of hyperparameter
    (every hyperparameter of a kind shares it; `alpha` and `period` only where the kernel has
    them). The default kernel is the study's RBF."""

    x: np.ndarray
    y: np.ndarray
    noise: float
    variance_prior: LogNormalPrior
    lengthscale_prior: LogNormalPrior
    kernel: Kernel = field(default_factory=RBF)
    alpha_prior: LogNormalPrior | None = None
    period_prior: LogNormalPrior | None = None

    def __post_init__(self) -> None:
        for hyperparameter in self.kernel.hyperparameters:
            self.prior(hyperparameter.kind)

    @functools.cached_property
    def squared_distances(self) -> np.ndarray:
        return (self.x[:, None] - self.x[None, :]) ** 2

    @functools.cached_property
    def noise_matrix(self) -> np.ndarray:
        return self.noise * np.eye(len(self.x))

    @functools.cached_property
    def y_and_identity(self) -> np.ndarray:
        """Right-hand sides [y, I]: one triangular solve gives A^-1 y and A^-1."""
        return np.column_stack([self.y, np.eye(len(self.y))])

    @functools.cached_property
    def log_norm(self) -> float:
        return 0.5 * len(self.y) * _LOG_2PI

    def prior(self, kind: str) -> LogNormalPrior:
        """The prior of every hyperparameter of this kind (variance, lengthscale, alpha, period)."""
        prior = {
            "variance": self.variance_prior,
            "lengthscale": self.lengthscale_prior,
            "alpha": self.alpha_prior,
            "period": self.period_prior,
        }[kind]
        if prior is None:
            raise ValueError(f"kernel {self.kernel}: no prior for its {kind} hyperparameter")
        return prior

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return self.kernel.parameter_names

    @property
    def uses_fast_path(self) -> bool:
        """A lone RBF kernel: the hand-written numpy value and gradient."""
        return type(self.kernel) is RBF

    def log_density_and_grad(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        """The NUTS target: log p(y, u) over u = the log hyperparameters (`parameter_names`)."""
        if self.uses_fast_path:
            return log_joint_and_grad(self, u)
        return autograd_log_joint_and_grad(self, u)

    def constrain(self, draws: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.exp(draws[..., i]) for i, name in enumerate(self.parameter_names)}

    def log_joint(self, u: torch.Tensor) -> torch.Tensor:
        """log p(y, u) in torch for any kernel, batched over the leading shape of u (..., d):
        the one definition the autograd path differentiates. With u = log theta, each prior
        LogNormal(loc, scale) with the Jacobian of exp is Normal(loc, scale) in u. -inf where
        K + noise I is not positive definite."""
        x, y, noise_matrix, loc, scale = self._torch_constants
        values = dict(zip(self.parameter_names, u.exp().unbind(-1), strict=True))
        cov = self.kernel.covariance(x, x, values) + noise_matrix
        z = (u - loc) / scale
        return gaussian_log_likelihood(cov, y) - 0.5 * (z**2).sum(-1) - self._log_prior_norm

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        import torch  # deferred: ~1.1 s at import; see the module docstring

        return torch.as_tensor(self.x, dtype=torch.float64), torch.as_tensor(self.y, dtype=torch.float64)

    @functools.cached_property
    def _torch_constants(self) -> tuple[torch.Tensor, ...]:
        """x, y, noise I and each hyperparameter's prior loc and scale, (d,): built once per
        model (a NUTS run evaluates it thousands of times), never pickled (`__getstate__`)."""
        import torch

        priors = [self.prior(h.kind) for h in self.kernel.hyperparameters]
        return (
            *self.tensors(),
            torch.as_tensor(self.noise_matrix, dtype=torch.float64),
            torch.tensor([p.loc for p in priors], dtype=torch.float64),
            torch.tensor([p.scale for p in priors], dtype=torch.float64),
        )

    @functools.cached_property
    def _log_prior_norm(self) -> float:
        return sum(math.log(self.prior(h.kind).scale) + 0.5 * _LOG_2PI for h in self.kernel.hyperparameters)

    def __getstate__(self) -> dict:
        """Pickled for chain worker processes without torch tensors: a worker of the numpy
        fast path then never loads torch."""
        return {key: value for key, value in self.__dict__.items() if key != "_torch_constants"}


def gaussian_log_likelihood(cov: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log N(y | 0, cov), batched over cov's leading shape; -inf where cov is not positive
    definite."""
    import torch

    n = y.shape[-1]
    chol, info = torch.linalg.cholesky_ex(cov)
    white = torch.linalg.solve_triangular(chol, y.expand(*chol.shape[:-1])[..., None], upper=False)
    log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    value = -0.5 * (white[..., 0] ** 2).sum(-1) - 0.5 * log_det - 0.5 * n * _LOG_2PI
    return torch.where(info == 0, value, -math.inf)


def log_joint_and_grad(model: GPModel, u: np.ndarray) -> tuple[float, np.ndarray]:
    """log p(y, u) and its gradient in u = (log variance, log lengthscale), by hand in numpy:
    d/du log N(y|0,A) = 0.5 (a^T dA/du a - tr(A^-1 dA/du)) with A = K + noise I, a = A^-1 y.
    One LAPACK Cholesky (potrf) and one solve for [a, A^-1] (potrs): a few microseconds at
    n = 5, where numpy's generic wrappers cost more than the arithmetic. Returns -inf off the
    positive-definite domain."""
    log_variance, log_lengthscale = float(u[0]), float(u[1])
    if not (abs(log_variance) < 700 and abs(log_lengthscale) < 350):  # exp over/underflow
        return -math.inf, np.zeros(2)
    scaled = model.squared_distances * math.exp(-2.0 * log_lengthscale)
    kernel = math.exp(log_variance) * np.exp(-0.5 * scaled)
    chol, info = lapack.dpotrf(kernel + model.noise_matrix, lower=1, clean=0)
    if info != 0:
        return -math.inf, np.zeros(2)
    solved, info = lapack.dpotrs(chol, model.y_and_identity, lower=1)
    alpha, inverse = solved[:, 0], solved[:, 1:]
    kernel_scaled = kernel * scaled  # dA/d log lengthscale; dA/d log variance is `kernel`
    value = -0.5 * float(model.y @ alpha) - float(np.log(chol.diagonal()).sum()) - model.log_norm
    grad_variance = 0.5 * (float(alpha @ kernel @ alpha) - float(np.vdot(inverse, kernel)))
    grad_lengthscale = 0.5 * (float(alpha @ kernel_scaled @ alpha) - float(np.vdot(inverse, kernel_scaled)))
    grad = np.array([grad_variance, grad_lengthscale])
    for i, prior in enumerate((model.variance_prior, model.lengthscale_prior)):
        z = (float(u[i]) - prior.loc) / prior.scale
        value -= 0.5 * z * z + math.log(prior.scale) + 0.5 * _LOG_2PI
        grad[i] -= z / prior.scale
    return value, grad


def autograd_log_joint_and_grad(model: GPModel, u: np.ndarray) -> tuple[float, np.ndarray]:
    """log p(y, u) and its gradient in u for any kernel: `GPModel.log_joint` and torch autograd.
    Returns -inf (and a zero gradient) off the positive-definite domain, where a log
    hyperparameter over/underflows, or where the value or gradient is not finite."""
    import torch

    off_domain = -math.inf, np.zeros(len(u))
    if not np.all(np.abs(u) < _MAX_ABS_LOG):  # also NaN
        return off_domain
    with _one_thread():
        point = torch.tensor(u, dtype=torch.float64, requires_grad=True)
        value = model.log_joint(point)
        if not torch.isfinite(value):
            return off_domain
        (grad,) = torch.autograd.grad(value, point)
    if not torch.isfinite(grad).all():
        return off_domain
    return float(value.detach()), grad.numpy()


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Torch on one thread for the duration: on a 5x5 matrix, MKL's threaded Cholesky costs up to
    milliseconds of thread hand-offs on a busy machine (measured: 1.3 ms on 2 threads, 2 us on
    one); the thread count is restored after."""
    import torch

    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
