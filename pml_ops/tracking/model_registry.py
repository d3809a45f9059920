"""The MLflow Model Registry side of the pipeline: one registered model per density model
(`pml-ops-<model>`), one version per evaluation, tagged with its provenance, its `test_score` and
its comparability key; aliases name the best version among versions whose scores compare.

A test score (mean log-density over the test images, nats per image, higher is better) ranks
two models only when both are the same kind of number on the same images. A version's
comparability key, each part a version tag:

    dataset       data.dataset (mnist, fashion-mnist)
    data_md5      the DVC md5 of the data artifact in dvc.lock: the exact images
    test_images   how many test images the score averages (all, or density.subset.test)
    objective     ELBO (a lower bound) or exact log-likelihood
    observation   the observation model (Bernoulli, continuous Bernoulli, Gaussian, ...)
    profile       tracking.profile: `study`, or `smoke` (profiles/smoke.yaml's reduced settings)

and `comparability_key`, a 12-hex digest of the six. The score is the objective on every scored
test image; the IWAE (evaluate.iwae_images, iwae_samples) is a metric of its own and not part of
it, so neither is in the key.

The rule, decided and applied under the store's lock (two evaluations of the same model at once
cannot both become champion):

- `champion` is the best version among those with the current champion's key: a version with
  that key becomes `champion` when its `test_score` is higher than the champion's, else
  `challenger` (the latest such version that did not beat it).
- The first study-profile version of a registered model becomes `champion`; so does one whose
  champion has no key (registered before keys were recorded: it cannot be compared, so it yields).
- A study-profile version with another key is not compared with the champion: it gets a
  `not_compared` tag saying how it differs ("scored on 2000 test images, the champion v3 on
  10000") and the alias `candidate-<comparability_key>` when it beats that key's earlier versions
  (the alias holds the best version of each other key). Moving the champion to another key (the
  study now scores all test images, say) is deliberate: point `champion` at that key's version
  (MLflow UI, or `MlflowClient().set_registered_model_alias`); later versions compare with it.
- A smoke-profile version never competes: it takes the alias `smoke` (the latest smoke version)
  and a `not_compared` tag. Neither does a version whose data digest is unknown (no dvc.lock
  entry for the data: the stage ran outside DVC): no alias, only the tag.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pml_ops.tracking.provenance import (
    LOCK_DIGEST_TAG,
    dvc_experiment,
    dvc_output_md5,
    git_commit,
    lock_digest,
)
from pml_ops.tracking.store import holding, retry_locked, store_lock

PREFIX = "pml-ops-"
CHAMPION = "champion"
CHALLENGER = "challenger"
CANDIDATE_PREFIX = "candidate-"
STUDY = "study"  # the one profile whose versions compete for champion
SCORE_TAG = "test_score"
KEY_TAG = "comparability_key"
NOT_COMPARED_TAG = "not_compared"
UNKNOWN = "unknown"  # what provenance reports for a value it cannot find


def registered_name(model: str) -> str:
    """The stable registry name of the density model `model` (its key in params.yaml)."""
    return PREFIX + model


@dataclass(frozen=True)
class Comparability:
    """What must be equal for two test scores to rank two models (the module docstring)."""

    dataset: str
    data_md5: str
    test_images: int
    objective: str
    observation: str
    profile: str

    def digest(self) -> str:
        """12 hex digits of sha256 over the key's parts (sorted JSON): `comparability_key`."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def tags(self) -> dict[str, str]:
        return {**{f.name: str(getattr(self, f.name)) for f in fields(self)}, KEY_TAG: self.digest()}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Comparability | None:
        """The key a version was tagged with, or None for a version registered without one."""
        try:
            values: dict[str, Any] = {f.name: tags[f.name] for f in fields(cls)}
            values["test_images"] = int(values["test_images"])
        except (KeyError, ValueError):
            return None
        return cls(**values)

    def unknown(self) -> list[str]:
        """The parts provenance could not determine."""
        return [f.name for f in fields(self) if getattr(self, f.name) == UNKNOWN]

    def differences(self, other: Comparability, other_name: str) -> list[str]:
        """How this key differs from `other`'s (the version called `other_name`), one phrase per part."""
        phrases = []
        if self.dataset != other.dataset:
            phrases.append(f"scored on {self.dataset}, {other_name} on {other.dataset}")
        elif self.data_md5 != other.data_md5:
            phrases.append(
                f"scored on data with DVC md5 {self.data_md5[:8]}, {other_name} on {other.data_md5[:8]}"
            )
        if self.test_images != other.test_images:
            phrases.append(f"scored on {self.test_images} test images, {other_name} on {other.test_images}")
        if self.objective != other.objective:
            phrases.append(f"objective {self.objective}, {other_name}'s {other.objective}")
        if self.observation != other.observation:
            phrases.append(f"observation model {self.observation}, {other_name}'s {other.observation}")
        if self.profile != other.profile:
            phrases.append(f"profile {self.profile}, {other_name}'s {other.profile}")
        return phrases


def comparability(dataset: str, data_path: str, metrics: Mapping[str, Any], profile: str) -> Comparability:
    """The key of a model evaluated on `data_path` (data set `dataset`) with the evaluate stage's
    `metrics` (test_images, objective, observation) under the params profile `profile`."""
    return Comparability(
        dataset=dataset,
        data_md5=dvc_output_md5(data_path),
        test_images=int(metrics["test_images"]),
        objective=str(metrics["objective"]),
        observation=str(metrics["observation"]),
        profile=profile,
    )


def candidate_alias(key: Comparability) -> str:
    return CANDIDATE_PREFIX + key.digest()


@dataclass(frozen=True)
class Holder:
    """The version an alias points at: its number, `test_score` tag and key (None: untagged)."""

    version: str
    score: float
    key: Comparability | None


@dataclass(frozen=True)
class Decision:
    alias: str | None  # None: the version takes no alias
    compared: bool  # whether its score was ranked against the champion's
    reason: str  # the outcome's reason; when not compared, why not (its `not_compared` tag)


@dataclass(frozen=True)
class Registration:
    name: str
    version: str
    alias: str | None  # CHAMPION, CHALLENGER, candidate-<key>, smoke, or None
    previous_champion: str | None  # its version, if there was one
    previous_score: float | None
    key: Comparability
    compared: bool
    reason: str

    def summary(self) -> str:
        """One line for the log: 'registered pml-ops-vae v7: challenger (champion v3 scored ...)'."""
        why = self.reason if self.compared else f"not compared: {self.reason}"
        return f"registered {self.name} v{self.version}: {self.alias or 'no alias'} ({why})"


def holder(client: Any, name: str, alias: str) -> Holder | None:
    """The version `alias` of `name` points at, or None."""
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return Holder(version.version, float(version.tags[SCORE_TAG]), Comparability.from_tags(version.tags))


def champion(client: Any, name: str) -> Holder | None:
    """The current champion of `name`, or None."""
    return holder(client, name, CHAMPION)


def decide(key: Comparability, score: float, current: Holder | None, best_of_key: Holder | None) -> Decision:
    """The alias a new version with `key` and test score `score` takes, given the champion
    `current` and the holder of its key's candidate alias `best_of_key` (the module's rule)."""
    if key.profile != STUDY:
        reason = f"the {key.profile} profile's reduced settings never compete for champion"
        return Decision(key.profile, False, reason)
    if missing := key.unknown():
        reason = f"its {', '.join(missing)} is unknown (no dvc.lock entry for the data: run outside DVC)"
        return Decision(None, False, reason)
    if current is None:
        return Decision(CHAMPION, True, "the first version to compete")
    held = f"champion v{current.version}"
    if current.key is None:
        return Decision(CHAMPION, True, f"{held} has no comparability key (registered before keys were)")
    if current.key == key:
        if score > current.score:
            return Decision(CHAMPION, True, f"beat {held}'s {current.score:.2f} on the same data")
        return Decision(CHALLENGER, True, f"{held} scored {current.score:.2f} on the same data")
    reason = "; ".join(key.differences(current.key, f"the {held}"))
    alias = candidate_alias(key)
    if best_of_key is None or score > best_of_key.score:
        return Decision(alias, False, reason)
    return Decision(None, False, f"{reason}; {alias} v{best_of_key.version} scored {best_of_key.score:.2f}")


def register(
    model_uri: str, model: str, test_score: float, tags: dict[str, str], key: Comparability
) -> Registration:
    """Register `model_uri` as a new version of `pml-ops-<model>` with `tags`, its test score and
    its comparability `key`, and move the alias the module's rule gives it."""
    client = MlflowClient()
    name = registered_name(model)
    score = float(test_score)
    with holding(store_lock(mlflow.get_tracking_uri()), f"registering {name}"):
        current = champion(client, name)
        decision = decide(key, score, current, holder(client, name, candidate_alias(key)))
        all_tags = {**tags, **key.tags(), SCORE_TAG: repr(score)}
        if not decision.compared:
            all_tags[NOT_COMPARED_TAG] = decision.reason
        version = retry_locked(
            lambda: mlflow.register_model(model_uri, name, tags=all_tags), f"registering a version of {name}"
        )
        client.update_registered_model(
            name, description=f"Density model `{model}` of pml-ops: the `models` list of params.yaml"
        )
        if decision.alias is not None:
            client.set_registered_model_alias(name, decision.alias, version.version)
    before_version, before_score = (current.version, current.score) if current is not None else (None, None)
    return Registration(
        name,
        version.version,
        decision.alias,
        before_version,
        before_score,
        key,
        decision.compared,
        decision.reason,
    )


def params_digest(values: dict[str, Any]) -> str:
    """A short digest of the settings that made a model (sorted JSON, sha256)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def version_tags(settings: dict[str, Any], run_id: str) -> dict[str, str]:
    """Provenance of a model version beside its key: the git commit, a digest of the settings that
    made the model, the DVC experiment, the evaluate run and the lock's sha256."""
    return {
        "git_commit": git_commit(),
        "params_digest": params_digest(settings),
        "dvc_experiment": dvc_experiment(),
        "evaluate_run_id": run_id,
        LOCK_DIGEST_TAG: lock_digest(),
    }
