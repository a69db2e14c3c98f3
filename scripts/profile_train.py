"""Per-phase time and peak memory of training steps of an option file (ClipVSRModel or DistillVSRModel).

Examples::

    python scripts/profile_train.py -opt options/train/STD/demo/train_VESPCNS_STD_demo.yml --threads 1 \\
        --force_yml path:pretrain_network_t=experiments/demo_VESPCN_teacher_x4/models/net_g_latest.pth
    python scripts/profile_train.py -opt options/train/STD/demo/train_VESPCNS_baseline_demo.yml --json prof.json
    python scripts/profile_train.py -opt STD.yml --compare 'train:efficiency={amp: bf16}'   # option's effect

The model, data set, sampler and loader are built exactly as ``python -m stdsr.train`` builds them (nothing is
written: no experiment folder, no checkpoint). The phases are timed inside the model's own training step (see
``stdsr/tools/train_profile.py``); medians over ``--iters`` iterations after ``--warmup`` are reported.

For a DistillVSRModel, the *floor* is measured in the same run: a ClipVSRModel with the same student, the same
batches and the same efficiency options, plus one teacher forward. ``--compare`` adds a second model built with
extra ``--force_yml`` entries (model options only: the data set stays the profiled one's). All models take turns
on the same batch, in an order that rotates every iteration, so a change in machine load hits them alike and
their ratios stay fair even on a busy machine.
"""
import sys

from stdsr.tools.profile_train import main

if __name__ == '__main__':
    main()
