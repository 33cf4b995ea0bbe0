"""HTTP API: thin handlers (parse → domain → respond), one module per resource."""
