"""`python -m alignslm_eval` is `alignslm-eval`; so is `torchrun --nproc_per_node N -m alignslm_eval`."""

import sys

from alignslm_eval.cli.eval import main

sys.exit(main())
