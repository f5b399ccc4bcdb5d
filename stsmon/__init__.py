"""stsmon: the local runtime and operator CLI of stsmodelmonitor."""

__version__ = "0.1.0"
