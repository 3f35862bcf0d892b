"""Deployment: any run as a checked ONNX file (export), and the same models timed in every
runtime people deploy with (runtimes). Imported only when asked for: onnx, onnxruntime and
openvino load on first use, never with the dashboard."""
