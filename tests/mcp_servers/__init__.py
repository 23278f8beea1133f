"""Real MCP servers for the MCP client tests, built with the official `mcp` SDK."""
