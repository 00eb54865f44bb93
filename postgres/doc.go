// Package postgres keeps in PostgreSQL, through pgx, what several processes share: the permanent
// journal that brokers append to (journal.driver: postgres) and the ledger that adapter processes
// claim requests in (an adapter's ledger.dsn). It imports only the domain and the journal's chain
// logic.
package postgres
