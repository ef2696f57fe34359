package main

import (
	"context"
	"errors"
	"io"
)

func users(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("users: not available yet")
}
