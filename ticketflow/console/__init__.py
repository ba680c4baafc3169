"""`ticketflow console`: the local console in the browser (app.py: pages; worker.py: the runtime behind the
buttons and uploads; graph.py: the state machine as DOT; views.py: what the pages compute)."""
