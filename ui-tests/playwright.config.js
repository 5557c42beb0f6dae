/**
 * Galata on the machine's Chromium (no downloaded browser, no video: both need the network).
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

module.exports = {
  ...baseConfig,
  timeout: 120000,
  use: {
    ...baseConfig.use,
    video: 'off',
    launchOptions: { executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] }
  },
  webServer: {
    command: 'jlpm start',
    url: 'http://localhost:8888/lab',
    timeout: 120000,
    reuseExistingServer: false
  }
};
