"""What every page shares: the frame (header, notice, stores), the shared selection and
its URL schema, background jobs, clientside wiring, services and small widgets."""
