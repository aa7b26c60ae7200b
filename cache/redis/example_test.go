package tgredis_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"
	tgredis "github.com/tokenguard/tokenguard/cache/redis"
)

// A Store on a Redis of the fleet, with client options that keep every
// call within the Guard's deadline, and the calls the Guard makes. (This
// example needs a server, so it is compiled, not run.)
func Example() {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{"127.0.0.1:6379"}, // several for Cluster; MasterName for Sentinel
		ContextTimeoutEnabled: true,
		DialTimeout:           100 * time.Millisecond,
		ReadTimeout:           50 * time.Millisecond,
		WriteTimeout:          50 * time.Millisecond,
		PoolTimeout:           100 * time.Millisecond,
		MaxRetries:            -1,
		DialerRetries:         1,
	})
	defer rdb.Close()
	store := tgredis.New(rdb, tgredis.Options{Prefix: "tokenguard:"})

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	key := "introspect:3b1f..." // the Guard's keys are hashes of tokens
	if ok, err := store.Lease(ctx, key+":lease", "replica-7", 5*time.Second); err != nil {
		log.Print(err) // the Guard goes on by itself
	} else if ok {
		// This replica asks the authorization server, within the fleet's budget.
		if taken, retryIn, err := store.Take(ctx, "budget:client-1", 5, time.Minute); err == nil && !taken {
			fmt.Println("budget spent; next call in", retryIn)
		}
		_ = store.Set(ctx, key, []byte("sealed answer"), time.Minute)
		_ = store.Release(ctx, key+":lease", "replica-7")
	} else {
		// Another replica is asking: wait for its answer.
		answer, _ := store.Wait(ctx, key)
		fmt.Println(len(answer) > 0)
	}

	// DPoP: refuse a proof whose jti any replica has seen.
	if first, err := store.SeenOnce(ctx, "dpop:jti:9c2e...", 5*time.Minute); err != nil || !first {
		fmt.Println("replay (or no answer): refuse the proof")
	}
}
