"""Run a stage entry point: validate params first, turn user errors into one-line exits."""

from __future__ import annotations

import sys
from collections.abc import Callable

from pml_ops.config import DEFAULT_PARAMS_FILE, Params, load_params
from pml_ops.errors import PmlOpsError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def run_stage(stage: Callable[[Params], None], params_file: str = DEFAULT_PARAMS_FILE) -> None:
    """Load and validate params.yaml, then run `stage`; never end in a bare traceback for
    errors a user can fix."""
    try:
        stage(load_params(params_file))
    except PmlOpsError as error:
        print(f"pml-ops: error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("pml-ops: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
