"""Documents: upload flow, image processing and object storage backends."""
