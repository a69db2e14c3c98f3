"""Benchmark trained VSR models: PSNR/SSIM (Y) per clip and averaged, tOF, runtime per frame and parameters.

Split by job: :mod:`.datasets` (what to score), :mod:`.evaluate` (scoring), :mod:`.reports` and
:mod:`.paper_table` (what is written), :mod:`.runner` (the whole run, checked first); the command line is
:mod:`stdsr.tools.benchmark` (``scripts/benchmark.py``). docs/benchmark.md shows examples.
"""
from stdsr.errors import BenchmarkError  # noqa: F401
from stdsr.tools.benchmarking.datasets import (DATASET_KEYS, BenchmarkSet, DatasetSpec, collect_datasets,  # noqa: F401
                                            parse_dataset_arg, read_datasets_yaml)
from stdsr.tools.benchmarking.evaluate import check_model_scale, evaluate, timed_infer  # noqa: F401
from stdsr.tools.benchmarking.reports import (CSV_FIELDS, csv_report, json_safe, markdown_report,  # noqa: F401
                                           plot_psnr_runtime, write_reports)
from stdsr.tools.benchmarking.runner import (OUTPUT_FILES, check_out_dir, common_scale,  # noqa: F401
                                             paper_table_inputs, run)
