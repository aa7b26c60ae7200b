module github.com/tokenguard/tokenguard/adapters/echo5

go 1.25

require github.com/tokenguard/tokenguard v0.0.0

replace github.com/tokenguard/tokenguard => ../..
