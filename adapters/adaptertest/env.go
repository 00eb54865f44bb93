package adaptertest

import (
	"os"
	"strconv"
)

func ciEnv() bool {
	ok, _ := strconv.ParseBool(os.Getenv("CI"))
	return ok
}
