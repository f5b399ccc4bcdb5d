"""Model-quality monitoring on the local side: ground truth, schedule, metrics and alarms, reports.

The monitor job itself is ``processing_scripts/monitor.py`` (it runs in the
SageMaker container and, unchanged, under the local pipeline executor); this
package makes its inputs (ground-truth labels), runs it on the deployed
schedule, keeps its CloudWatch metrics and alarm states locally and turns its
results into reports. See docs/monitoring.md.
"""
