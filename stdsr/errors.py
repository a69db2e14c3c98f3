"""Every exception the package raises on purpose, in one tree, so any module can raise them without importing upward.

Two branches: :class:`UserError` is a fault of the input (options, data, checkpoints, paths, arguments); its message
names the file, key or option at fault and is the whole story, so the command-line entry points print it as one
line (``stdsr.utils.cli.run_cli``). Everything that is not a ``UserError`` is a bug and keeps its traceback.
Each class also keeps the built-in base its callers catch (``ValueError``, ``OSError``, ``KeyError``, ...).
"""


class StdsrError(Exception):
    """Root of the package's own exceptions."""


class UserError(StdsrError):
    """Bad input; printed by the entry points as ``<prog>: error: <message>`` (exit 2)."""


# --- arguments, paths and outputs ---------------------------------------------------------------------------------
class UserInputError(UserError, ValueError):
    """Bad input of a script (paths, outputs, arguments); the message names the file or argument at fault."""


class RunLockedError(UserInputError):
    """Another live process holds the run folder."""


class LauncherError(UserInputError):
    """``--launcher`` names a launcher this process was not started by."""


class PreparationError(UserInputError):
    """Bad input or output of a data preparation step; the message names the file or folder."""


class BenchmarkError(UserInputError):
    """Bad benchmark input (data set, scale, output folder); the message names the data set, model or file."""


class InferenceInputError(UserInputError):
    """Bad input or output path; the message names it."""


class VisualizationError(UserInputError):
    """Bad input for the figures; the message names the folder, option or model."""


# --- options ------------------------------------------------------------------------------------------------------
class OptionError(UserError, ValueError):
    """An option file (or a --force_yml entry) asks for something that does not exist or cannot work."""


class TeacherCheckError(OptionError):
    """The teacher is worse than bicubic on the validation data and the options do not allow it."""


# --- data ---------------------------------------------------------------------------------------------------------
class DataError(UserError, ValueError):
    """Bad dataset input; the message always names the file, LMDB key or option key at fault."""


class VideoDataError(UserError, RuntimeError):
    """A wheel video is missing or does not decode to what the demo expects."""


class RecipeError(UserError, RuntimeError):
    """The download does not have the layout the recipe expects, or an output already exists."""


# --- weights and checkpoints --------------------------------------------------------------------------------------
class WeightsError(UserError, ValueError):
    """A checkpoint cannot be read, lacks the requested weights, or does not fit its network."""


class TeacherCheckpointError(WeightsError):
    """``path.pretrain_network_t`` does not fit ``network_t`` (or cannot be read)."""


class ModelLoadError(WeightsError):
    """A model cannot be built or loaded; the message names the option file, checkpoint or key at fault."""


class CheckpointError(UserError, OSError):
    """A checkpoint could not be written or read; the message names the file and the cause."""


class DiskFullError(UserError, OSError):
    """An output (checkpoint, state, LMDB, report) could not be written because its disk or quota is full; the
    message names the file, and the previous version of it is untouched."""


class DownloadError(UserError, RuntimeError):
    """A file could not be fetched or is not the file its name promises; the message says what to do."""


# --- networks and distillation ------------------------------------------------------------------------------------
class UnknownModulePathError(UserError, KeyError, ValueError):
    """A module path that the network does not have.

    Subclasses both KeyError (it is a failed lookup) and ValueError (it is a bad option value), so callers may
    catch either. ``str()`` gives the plain message (KeyError would otherwise print it quoted on one line).
    """

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


class FeatureTapError(UserError, ValueError):
    """A tapped layer cannot give what a distillation method needs (e.g. pre-ReLU features)."""


class NonFiniteLossError(UserError, FloatingPointError):
    """A loss term became NaN or Inf; the message names the iteration and the term."""


class ProfileError(UserError, ValueError):
    """A network cannot be profiled as asked (bad option file, network key, tap or input shape)."""


# --- deployment ---------------------------------------------------------------------------------------------------
class ExportError(UserInputError):
    """A student cannot be exported (or its export disagrees with PyTorch); the message names the model/operator."""


class QuantizationRefused(ExportError):
    """A student that does not quantize (or bad quantization input); the message says why."""


class OnnxModelError(UserInputError):
    """An ONNX model file (or its sidecar) cannot be used; the message names the file."""


class DeploymentTableError(UserInputError):
    """Bad input to the deployment table (an option, a data root, the output folder)."""


# --- reports and studies ------------------------------------------------------------------------------------------
class PaperTableError(UserError, ValueError):
    """A reference file or a row that cannot be put in a table; the message names the file and entry."""


class CompareError(UserError, RuntimeError):
    """The comparison cannot go on (missing file, failed run, runs that do not share their data, ...)."""


class DemoError(UserError, RuntimeError):
    """A step of the demo failed; the message names the step and shows the end of its output."""
