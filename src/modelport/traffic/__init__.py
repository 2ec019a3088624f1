"""Which version answers: traffic policies (split, sticky, canary, shadow), the live router,
rollouts and their state shared between workers."""
