"""`aidline drill`: replay a scenario against a running Aidline through its HTTP API, as a real client would.

scenarios.py holds the moments to replay (data, seeded), client.py speaks HTTP, player.py submits the
needs at their times and plays the drill's volunteers (accept, decline or stay silent; go, arrive,
finish; the requester rates), report.py computes the report from what the API answered (pure), and
chart.py draws the needs by status over time. Nothing here touches Redis: the drill is a client.
"""
