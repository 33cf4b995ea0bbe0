"""The rules of the service centre: plain async functions over a unit of work.

Nothing here knows HTTP or socket.io; handlers call these functions inside a unit of work
(``server.runtime.Domain.unit``), which publishes the events they leave on it once it commits.
"""
