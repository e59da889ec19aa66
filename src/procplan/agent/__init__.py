"""The node agent: GPU readers (``nvml``, ``smi``) and, later, the agent loop itself."""
