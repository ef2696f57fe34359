package main

import (
	"context"
	"errors"
	"io"
)

func sandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("sandbox: not available yet")
}
