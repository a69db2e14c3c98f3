"""Deployment of a trained student: ONNX export with a parity check, onnxruntime inference, INT8, latency.

Nothing here is imported by ``import stdsr``: onnx and onnxruntime are loaded only by the code that needs them.
"""
