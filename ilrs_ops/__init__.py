"""ilrs-ops: the ground segment of the International Lunar Research Station.

The packages follow the data flow: ``sources`` -> ``processing`` -> ``store`` -> ``history`` ->
``console``; ``profiles`` describe the instruments, ``wire`` what crosses a process boundary.
Importing this package loads nothing heavy (the command line starts fast).
"""

from ilrs_ops.errors import IlrsError

__version__ = "0.1.0"
__all__ = ["IlrsError", "__version__"]
