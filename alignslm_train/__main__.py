"""`python -m alignslm_train` is `alignslm-train`; so is `torchrun --nproc_per_node N -m alignslm_train`."""

import sys

from alignslm_train.cli import main

sys.exit(main())
