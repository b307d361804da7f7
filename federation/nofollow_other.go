//go:build !unix

package federation

const noFollow = 0
