import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely';

/**
 * Usage records count the prompt tokens written to the prompt cache (Anthropic's cache writes, billed at the
 * `cache_write` price), so every record's cost follows from its own columns. PostgreSQL's settlement function takes
 * the new count (migration 0004's version is replaced).
 */
export const usageCacheWritesMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .alterTable('usage_records')
      .addColumn('cache_write_tokens', 'integer', (column) => column.notNull().defaultTo(0))
      .execute();
    if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
    await sql`drop function tm_settle(text, bigint, text, text, text, text, text, integer, integer, integer, bigint, integer, integer, text, text)`.execute(db);
    await sql`
      create function tm_settle(
        p_id text, p_created bigint, p_account text, p_key text, p_model text, p_endpoint text, p_status text,
        p_prompt integer, p_cached integer, p_completion integer, p_cost bigint, p_latency integer, p_ttft integer,
        p_batch text, p_ledger_id text, p_cache_write integer
      ) returns void language plpgsql as $$
      declare
        v_account text;
        v_key text;
        v_held bigint;
      begin
        -- Deleting first locks the reservation: a concurrent settle or release of the same request waits, then finds none.
        delete from reservations where request_id = p_id
        returning account_id, key_id, amount_micros into v_account, v_key, v_held;
        if not found then
          return;
        end if;
        if p_cost > v_held then
          raise exception 'settle %: cost % micro-USD exceeds the % reserved', p_id, p_cost, v_held;
        end if;
        if p_account <> v_account then
          raise exception 'settle %: account % is not the reservation''s %', p_id, p_account, v_account;
        end if;
        update accounts set balance_micros = balance_micros + (v_held - p_cost) where id = v_account;
        if v_key is not null then
          update api_keys set spent_micros = spent_micros - (v_held - p_cost) where id = v_key;
        end if;
        insert into usage_records (id, created_at, account_id, key_id, model, endpoint, status, prompt_tokens,
                                   cached_tokens, completion_tokens, cost_micros, latency_ms, ttft_ms, batch_id,
                                   cache_write_tokens)
        values (p_id, p_created, p_account, p_key, p_model, p_endpoint, p_status, p_prompt,
                p_cached, p_completion, p_cost, p_latency, p_ttft, p_batch, p_cache_write);
        insert into ledger_entries (id, account_id, amount_micros, kind, request_id, note, created_at)
        values (p_ledger_id, p_account, -p_cost, 'usage', p_id, null, p_created);
      end $$`.execute(db);
  },
};
