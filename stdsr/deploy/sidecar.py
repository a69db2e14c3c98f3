"""An exported model's files: the ONNX graph's input/output names and its JSON sidecar, checked before anything is
written and published together, so export and quantization cannot drift apart on either.

The sidecar ``FILE.onnx.json`` records the student's options, scale, window, opset and parity figures, so
inference never has to guess them; the model file appears under its name only once it has been checked.
"""
import json
import os
from os import path as osp

from stdsr.errors import ExportError, OnnxModelError
from stdsr.utils.atomic_files import write_text_atomic

SIDECAR_FORMAT = 'stdsr-onnx/1'
INPUT_NAME, OUTPUT_NAME = 'lq', 'sr'


def sidecar_path(onnx_path):
    return f'{onnx_path}.json'


def check_output_path(output, overwrite):
    """Validated before the model is touched: a new .onnx file (and sidecar) in a writable folder."""
    from stdsr.utils.output_paths import check_output_file
    if not str(output).endswith('.onnx'):
        raise ExportError(f'--output {output}: the file name must end in .onnx')
    for path in (output, sidecar_path(output)):
        if osp.lexists(path) and not overwrite:
            raise ExportError(f'output {path} exists; pass --overwrite to replace it')
    check_output_file(output, 'output model')


def publish_with_sidecar(tmp, output, meta):
    """Rename the checked model ``tmp`` to ``output``, then write its sidecar atomically beside it."""
    os.replace(tmp, output)
    write_text_atomic(sidecar_path(output), json.dumps(meta, indent=2) + '\n')


def read_sidecar(path):
    meta_path = sidecar_path(path)
    if not osp.isfile(meta_path):
        raise OnnxModelError(f'ONNX model {path} has no sidecar {meta_path}; export it with scripts/export_onnx.py')
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise OnnxModelError(f'sidecar {meta_path} is not readable JSON ({err})') from None
    if not isinstance(meta, dict) or meta.get('format') != SIDECAR_FORMAT:
        raise OnnxModelError(f"sidecar {meta_path}: expected format '{SIDECAR_FORMAT}'")
    for key in ('window', 'scale', 'mode'):
        if key not in meta:
            raise OnnxModelError(f"sidecar {meta_path}: key '{key}' is missing")
    return meta
