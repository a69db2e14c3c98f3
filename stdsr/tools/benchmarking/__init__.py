"""Benchmark trained VSR models: PSNR/SSIM (Y) per clip and averaged, tOF, runtime per frame and parameters.

Split by job: :mod:`.datasets` (what to score), :mod:`.evaluate` (scoring), :mod:`.reports` and
:mod:`.paper_table` (what is written), :mod:`.runner` (the whole run, checked first) and :mod:`.cli`
(``scripts/benchmark.py``). docs/benchmark.md shows examples.
"""
from stdsr.errors import BenchmarkError  # noqa: F401
from stdsr.tools.benchmark.datasets import (DATASET_KEYS, BenchmarkSet, DatasetSpec, collect_datasets,  # noqa: F401
                                            parse_dataset_arg, read_datasets_yaml)
from stdsr.tools.benchmark.evaluate import check_model_scale, evaluate, timed_infer  # noqa: F401
from stdsr.tools.benchmark.reports import (CSV_FIELDS, csv_report, json_safe, markdown_report,  # noqa: F401
                                           plot_psnr_runtime, write_reports)
from stdsr.tools.benchmark.runner import (OUTPUT_FILES, check_out_dir, common_scale, paper_table_inputs,  # noqa: F401
                                          run)
