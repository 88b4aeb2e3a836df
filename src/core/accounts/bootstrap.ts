import { randomBytes } from 'node:crypto';
import type { AuthConfig } from '../../config/schema.js';
import type { Store } from '../../store/store.js';
import { generateSecret, hashSecret } from '../keys/secrets.js';
import type { AccountService } from './account-service.js';
import { ADMIN_KEY_SETTING } from './authenticator.js';

const BOOTSTRAP_SETTING = 'bootstrapped_by';

/** Secrets created at the first start, to be shown once (never logged). */
export interface BootstrapSecrets {
  adminKey: string | null;
  demoKey: string | null;
  demoAccountId: string | null;
}

/**
 * First-start set-up, safe when several instances start at once: the admin key (from the config, else generated)
 * is stored as a hash; a `default` account with demo credits and a demo key is created once.
 */
export async function bootstrapAccounts(store: Store, accounts: AccountService, auth: AuthConfig): Promise<BootstrapSecrets> {
  const secrets: BootstrapSecrets = { adminKey: null, demoKey: null, demoAccountId: null };
  if (auth.admin_key !== null) {
    const hash = hashSecret(auth.admin_key);
    // TOKENMILL_ADMIN_KEY changed since the first start: the configured key wins.
    if ((await store.setSettingIfAbsent(ADMIN_KEY_SETTING, hash)) !== hash) await store.setSetting(ADMIN_KEY_SETTING, hash);
  } else {
    const generated = generateSecret();
    const hash = hashSecret(generated);
    if ((await store.setSettingIfAbsent(ADMIN_KEY_SETTING, hash)) === hash) secrets.adminKey = generated;
  }
  if (auth.bootstrap_demo_account) {
    const claim = randomBytes(8).toString('hex');
    if ((await store.setSettingIfAbsent(BOOTSTRAP_SETTING, claim)) === claim) {
      const account = await accounts.createAccount('default', auth.demo_credits_usd);
      const { secret } = await accounts.createKey(account.id, { name: 'demo' });
      secrets.demoKey = secret;
      secrets.demoAccountId = account.id;
    }
  }
  return secrets;
}

