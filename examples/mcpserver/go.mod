module github.com/tokenguard/tokenguard/examples/mcpserver

go 1.26.0

require (
	github.com/modelcontextprotocol/go-sdk v1.8.0
	github.com/tokenguard/tokenguard v0.0.0
	github.com/tokenguard/tokenguard/adapters/mcp v0.0.0
)

replace (
	github.com/tokenguard/tokenguard => ../..
	github.com/tokenguard/tokenguard/adapters/mcp => ../../adapters/mcp
)
