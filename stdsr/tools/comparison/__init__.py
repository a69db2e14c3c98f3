"""Compare distillation methods on the user's own data: same data, seeds and iteration budget for every run.

Split by job: :mod:`.plan` (command line, plan, option rewriting, same-data check), :mod:`.runs` (training and
evaluation of each run), :mod:`.summary` (statistics, tables, charts) and :mod:`.runner` (the whole study), with
:mod:`.budget_axis`, :mod:`.plateau`, :mod:`.records` and :mod:`.family_summary` (one table over several studies,
``scripts/family_table.py``); the command line is :mod:`stdsr.tools.compare_distillation`.
See ``docs/distillation_methods.md``.
"""
from stdsr.errors import CompareError  # noqa: F401
from stdsr.tools.comparison import budget_axis  # noqa: F401
from stdsr.tools.comparison.plan import (PERFORMANCE_KEYS, PATH_KEYS, LOG_TAIL_LINES, PLAN_KEYS, read_json, plain,
                                      digest, log_tail, default_label, build_arg_parser, resolve_settings,
                                      parse_test_sets, apply_overrides, check_distill_section, schedule_overrides,
                                      run_name, harness_overrides, load_run_options, eval_datasets, data_signature,
                                      check_same_data, resolve_iters, prepare_runs)  # noqa: F401
from stdsr.tools.comparison.runs import (resolve_teacher, launch_command, train_run, metrics_options, evaluate,
                                      checkpoint_of, do_run, eval_fields, do_teacher)  # noqa: F401
from stdsr.tools.comparison.summary import (mean_std, summarize, paired_differences, paired_to_references,
                                         format_paired, format_table,
                                         plot_chart)  # noqa: F401
from stdsr.tools.comparison.runner import run_comparison  # noqa: F401
