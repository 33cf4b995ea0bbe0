"""The rules of the service centre: plain async functions over a unit of work.

Nothing here knows HTTP or socket.io; handlers call these functions and publish the events
they leave on the unit of work after it commits.
"""
