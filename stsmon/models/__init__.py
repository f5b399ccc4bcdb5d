"""The model registry's operations (``stsmon model``): versions, approval, rollback, comparison.

One implementation for both targets, through the boto3-shaped clients
(:mod:`stsmon.clients`): :mod:`.versions` reads the group's versions, their
evaluation and what the endpoint serves; :mod:`.release` approves, rejects
and rolls back; :mod:`.compare` scores two versions on the same data.
"""
