"""Testing a state machine definition without AWS: static rules, mocked scenarios on the local engine,
and a pass/fail report. Used by `ticketflow test-definition` and the pytest suite."""
