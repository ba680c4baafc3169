"""Operating the pipeline: reading executions and alerts, uploading, querying, locally or on a deployed stack.

The commands in ticketflow/commands/{upload,executions,show,alerts,query}.py are thin: they parse options and
print what these modules return."""
