import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { sendDevIdentity } from './dev-user';
import './styles.css';

// Before the first call: every call and push stream of the page carries the chosen dev identity.
sendDevIdentity();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
